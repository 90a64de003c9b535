"""The JSON API fuzzed with schemathesis from its own OpenAPI document: whatever a
client sends, the server answers without a 5xx, and what it answers conforms to the
document where that is reasonable (`CHECKS`).

Every operation the document lists at run time is fuzzed, so routes added later are
covered without editing this module: valid and invalid input as schemathesis makes
it, valid input with the ids of real objects in the path, and query parameters that
get past the first check (`PLAUSIBLE`). Each runs on both backends of the ``site``
fixture, as someone not logged in and as alice (a KIDS calibrator who owns all the
site's data), with the session's cookie and CSRF token on every request. The
operations that set a product's validity are fuzzed as bob instead (see `JUDGING`).

The fuzzed app runs no jobs (``run_jobs=False``); the jobs the fuzzing queues for
alice are cancelled afterwards, so that other modules' servers do not run them, and
the database is checked to hold every product as it was (validity, window, owner,
visibility).

Schemathesis's pytest integration (``schemathesis.pytest.from_fixture``) fails on
pytest 9 (it sets the private ``Function._nodeid``), so each operation's Hypothesis
test is built here from ``operation.as_strategy`` and run in a loop: a failure of
one operation does not hide another's, and the failures are reported together.
"""

import collections
import re
import traceback

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.awe.web.conftest import api_plan, log_in
from tests.awe.web.test_security import database_state

MAX_EXAMPLES = 40
"""Fuzzed requests per operation and user (fewer when the operation takes nothing)."""

JUDGING = re.compile(r"valid", re.IGNORECASE)
"""Operations whose path matches set a product's validity (the objects pages' ``POST
/api/objects/{id}/validity``). Alice is a calibrator of KIDS and owns every product
of the site: fuzzed as her, a random id would sooner or later name a real product and
invalidate it, which changes what every later test's plans select. They are fuzzed
as bob, a VIKING member who may judge nothing here, so every such request must be
refused (and none may be a 5xx); alice's run leaves them out."""

APP_ERRORS = {400, 401, 403, 404, 409, 422}
"""The statuses the app answers a user's mistake with (`awe.web.app`), documented or
not."""

USERS = ("anonymous", "alice", "bob")


class Fuzzer:
    """An in-process client of the site's app as one user: sends schemathesis's cases
    through it, with the session's cookie and CSRF token."""

    def __init__(self, site, client, user, token, ids):
        self.site, self.client, self.user, self.token = site, client, user, token
        self.ids = ids
        """Real ids by path parameter name: alice's products and a job of hers, so
        that the fuzzing reaches the code behind an id that exists."""
        self.answers = collections.Counter()
        """``(operation, status)``: how often each was answered."""

    def send(self, case):
        kwargs = case.as_transport_kwargs(base_url="http://testserver",
                                          headers={"X-CSRF-Token": self.token})
        method, url = kwargs.pop("method"), kwargs.pop("url")
        request = {"headers": kwargs.pop("headers", None),
                   "params": kwargs.pop("params", None)}
        if "json" in kwargs:
            request["json"] = kwargs.pop("json")
        if "data" in kwargs:
            data = kwargs.pop("data")
            request["content" if isinstance(data, (bytes, str)) else "data"] = data
        if kwargs.pop("cookies", None):
            pytest.fail(f"{case.operation.label} takes cookies: send them too")
        assert not {k: v for k, v in kwargs.items() if v}, f"not sent: {kwargs}"
        try:
            response = self.client.request(method, url, follow_redirects=False, **request)
            self.answers[case.operation.label, response.status_code] += 1
            return response
        except Exception as err:  # the TestClient re-raises the app's errors: a 500
            where = traceback.format_exception(err)[-2].strip().splitlines()[0]
            raise AssertionError(
                f"{method} {url} as {self.user} ({request}) raised {err!r} at {where}"
            ) from err


def _product_ids(site):
    facts = site.facts
    return sorted({facts["frame"], facts["flat"], facts["exposure"], facts["sourcelist"],
                   *facts["objects"][:3]})


def _queued_job(client):
    """A job of alice's, queued (the fuzzed app runs none), made through ``client``
    (one app at a time: each connects the process's database); `fuzzer` cancels
    it."""
    token = log_in(client, "alice")
    response = client.post("/api/jobs", json={"target": "MasterBias"},
                           headers={"X-CSRF-Token": token})
    assert response.status_code == 201, response.text
    return response.json()["object_id"]


def _described(response):
    request = response.request
    body = request.content[:300].decode(errors="replace")
    return (f"{request.method} {request.url} {body!r} -> {response.status_code} "
            f"{response.headers.get('content-type')}: {response.text[:300]!r}")


def _job_ids(client, user):
    """``{job id: state}`` of ``user``'s jobs (``client`` is logged in as them)."""
    log_in(client, user)
    return {job["object_id"]: job["state"] for job in client.get("/api/jobs").json()}


@pytest.fixture(scope="module", params=USERS)
def fuzzer(request, site):
    """A `Fuzzer` of the site's app (running no jobs) as the user of the parameter;
    cancels the jobs of alice's that are left queued after."""
    user = request.param
    _, judged = database_state(site.url)
    with pytest.MonkeyPatch.context() as monkeypatch, \
            site.client(monkeypatch, run_jobs=False) as client:
        before = set(_job_ids(client, "alice"))
        ids = {"object_id": _product_ids(site), "job_id": [_queued_job(client)]}
        if user == "anonymous":
            client.cookies.clear()
            token = client.get("/api/context").json()["csrf_token"]
        else:
            token = log_in(client, user)
        yield Fuzzer(site, client, user, token, ids)
        client.cookies.clear()
        for job_id, state in _job_ids(client, "alice").items():
            if job_id not in before and state in ("queued", "running"):
                response = client.post(f"/api/jobs/{job_id}/cancel",
                                       headers={"X-CSRF-Token": log_in(client, "alice")})
                assert response.status_code == 200, response.text
    _, after = database_state(site.url)
    for table, rows in judged.items():  # no product's validity, window, owner... changed
        assert set(rows) <= set(after[table]), f"fuzzing as {user} changed {table}"


def operations(fuzzer):
    """The operations of the app's OpenAPI document, as the fuzzer's user fuzzes
    them (`JUDGING`)."""
    document = fuzzer.client.get("/openapi.json")
    assert document.status_code == 200, document.text
    schema = schemathesis.openapi.from_dict(document.json())
    found = [result.ok() for result in schema.get_all_operations()]
    if fuzzer.user == "bob":
        return [op for op in found if JUDGING.search(op.path)]
    if fuzzer.user == "alice":
        return [op for op in found if not JUDGING.search(op.path)]
    return found


def documented_or_app_error(ctx, response, case):
    """A status the document lists for the operation, or one of the app's errors
    (`APP_ERRORS`); under ``/api/`` as a JSON object (elsewhere an error is a page,
    or a VOTable for cone search). Its exact shape is `test_api_errors_have_one_shape`'s
    business."""
    documented = case.operation.definition.raw.get("responses", {})
    status = response.status_code
    if str(status) in documented or f"{str(status)[0]}XX" in documented:
        return None
    assert status in APP_ERRORS, \
        f"{case.operation.label} answered {status}, which it does not document"
    if case.operation.path.startswith("/api/"):
        assert _content_type(response).startswith("application/json") \
            and isinstance(response.json(), dict), \
            f"{case.operation.label} answered {status} with {response.text[:200]!r}"
    return True


def _content_type(response):
    """The content type of a schemathesis `Response` (whose headers are lists)."""
    return (response.headers.get("content-type") or [""])[0]


def content_type_as_documented(ctx, response, case):
    """The content type is a documented one, for a success and for any answer of the
    JSON API. (Elsewhere the app answers errors with a page or a VOTable, while
    FastAPI documents every route's 422 as JSON.)"""
    if 200 <= response.status_code < 300 or case.operation.path.startswith("/api/"):
        return content_type_conformance(ctx, response, case)
    return None


def conforms_when_successful(ctx, response, case):
    """The body of a 2xx response conforms to the documented schema. (The app answers
    every 422 in its own error shape, not FastAPI's documented ``HTTPValidationError``:
    `test_documented_422_is_what_the_app_answers` keeps that apart.)"""
    if 200 <= response.status_code < 300:
        return response_schema_conformance(ctx, response, case)
    return None


CHECKS = [not_a_server_error, content_type_as_documented, documented_or_app_error,
          conforms_when_successful]

def _with_real_ids(operation, ids):
    """Valid cases of ``operation`` whose path names real ids (none if it takes no
    id): random ids would hardly ever meet one."""
    names = [name for name in re.findall(r"{(\w+)}", operation.path) if name in ids]
    if not names:
        return []
    return [st.tuples(*(st.sampled_from(ids[name]) for name in names)).flatmap(
        lambda values: operation.as_strategy(GenerationMode.POSITIVE,
                                             path_parameters=dict(zip(names, values))))]


INJECTIONS = ("' OR 1=1 --", '"; DROP TABLE dbobject; --', "<script>alert(1)</script>",
              "{{7*7}}", "../../etc/passwd", "%00", "\x00", "x" * 10_000)

_PATHS = st.one_of(
    st.sampled_from(("seeing", "date_obs", "filter", "chip.name", "exptime", "airmass",
                     "object_id", "flat.stdev", "raw.filename")),  # of CalibratedExposure
    st.sampled_from(("owner", "is_valid", "nosuch", "chip.nosuch.name", "chip", "")))
_VALUES = st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=20),
                    st.floats().map(repr), st.integers().map(str),
                    st.sampled_from(("r", "ccd1", "null", "2024-03-11T20:00", "ccd*")))


def _conditions(values=_VALUES):
    return st.builds("{} {} {}".format, _PATHS,
                     st.sampled_from(("==", "!=", "<", "<=", ">", ">=", "like")), values)


PLAUSIBLE = {
    "cls": st.one_of(st.just("CalibratedExposure"),
                     st.sampled_from(("SourceList", "MasterFlat", "Object", "RawScienceFrame",
                                      "Job", "User", "Credential", "DBObject"))),
    "x": _PATHS, "y": _PATHS,
    "where": st.lists(_conditions(), max_size=3),
    "RA": st.floats(-400, 400), "DEC": st.floats(-100, 100), "SR": st.floats(-1, 20),
}
"""Values of query parameters that reach past the first check (a class and paths
that exist, conditions in the conditions' grammar, positions near the sky), with
injections and nonsense in the places where a value goes."""


def _plausible(operation, site):
    """Cases of ``operation`` whose query parameters are `PLAUSIBLE` ones (none if it
    takes none of them); positions near the site's data."""
    near = {"RA": st.floats(site.facts["ra"] - 0.05, site.facts["ra"] + 0.05),
            "DEC": st.floats(site.facts["dec"] - 0.05, site.facts["dec"] + 0.05),
            "SR": st.floats(0, 0.1)}
    names = {p["name"] for p in operation.definition.raw.get("parameters", [])
             if p["in"] == "query"}
    known = {name: st.one_of(PLAUSIBLE[name], near[name]) if name in near
             else PLAUSIBLE[name] for name in names & set(PLAUSIBLE)}
    if not known:
        return []
    return [st.fixed_dictionaries(known).flatmap(
        lambda query: operation.as_strategy(GenerationMode.POSITIVE, query=query))]


SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking: bounded
    suppress_health_check=list(hypothesis.HealthCheck), verbosity=hypothesis.Verbosity.quiet)


def test_fuzzed_api_answers_without_server_errors(fuzzer):
    """Every operation of the document, with valid and invalid input: no 5xx, and
    answers as documented (`CHECKS`). Every operation is fuzzed even when one
    fails; the failures are reported together."""
    found = operations(fuzzer)
    if not found:
        pytest.skip(f"no operation to fuzz as {fuzzer.user} (bob fuzzes only those that "
                    "set validity, and there are none yet)")
    failures = []
    for operation in found:
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                             operation.as_strategy(GenerationMode.NEGATIVE),
                             *_with_real_ids(operation, fuzzer.ids),
                             *_plausible(operation, fuzzer.site))

        @SETTINGS
        @hypothesis.given(case=strategy)
        def fuzz(case):
            response = fuzzer.send(case)
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as err:
                raise AssertionError(f"{_described(response)}\n{err}") from err

        try:
            fuzz()
        except Exception as err:  # noqa: BLE001  (each operation's failure is reported)
            failures.append(f"{operation.label} as {fuzzer.user}: {err}")
    print(f"answers to {fuzzer.user} (operation, status: requests):")
    for (label, status), count in sorted(fuzzer.answers.items()):
        print(f"  {label} {status}: {count}")
    assert not failures, "\n\n".join(failures)
    sent = collections.Counter()
    for (label, _), count in fuzzer.answers.items():
        sent[label] += count
    assert all(sent[op.label] for op in found), sent  # (one case, if it takes nothing)


def test_documented_422_is_what_the_app_answers(site, monkeypatch):
    with site.client(monkeypatch, run_jobs=False) as client:
        document = client.get("/openapi.json").json()
        promised = document["paths"]["/api/plan"]["post"]["responses"]["422"]
        response = api_plan(client, target="no such class")
    assert response.status_code == 422
    reference = promised["content"]["application/json"]["schema"]["$ref"]
    required = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    assert set(response.json()) <= set(required["properties"])


def test_api_errors_have_one_shape(site, monkeypatch):
    """Every error of the API is ``{"error": ..., "message": ...}``, including a body
    that is not text: the fuzzing found FastAPI's own ``{"detail": "There was an error
    parsing the body"}`` there (its router raises Starlette's HTTPException, which the
    app did not handle until 4a9ddfc)."""
    with site.client(monkeypatch, run_jobs=False) as client:
        token = log_in(client, "alice")
        response = client.post("/api/context", content=b"\x07\xff\x03S",
                               headers={"X-CSRF-Token": token,
                                        "Content-Type": "application/json"})
    assert response.status_code in APP_ERRORS
    assert set(response.json()) == {"error", "message"}, response.text
