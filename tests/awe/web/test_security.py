"""Security of the web app, on both backends: who may read and change what, CSRF,
sessions that cannot be forged, log-in that gives nothing away, no open redirects,
and injection attempts in every field that are harmless.

The routes are the app's own (`app_routes` walks ``app.routes``, into the included
routers), so routes added later are covered: every POST must ask for the CSRF token,
every form field and query parameter gets the injection strings, every path with an
object id is tried with ids of alice's products. The site's users (see
``conftest.py``): alice, a KIDS calibrator, owns every product at privileges 2
(project); carol manages KIDS; bob is a VIKING member, who may see none of it.

One in-process app (which runs no jobs) serves each backend's module; each user is a
`Browser` on it with a cookie jar of their own. Nothing here changes a product: the
validity forms are only posted without ``confirm`` or by bob, and
`test_injections_are_harmless` checks the database afterwards.
"""

import base64
import collections
import html.parser
import itertools
import json
import re
import traceback
import typing
from urllib.parse import quote, urljoin, urlsplit

import httpx
import pydantic
import pytest
import sqlalchemy as sa
from fastapi import params
from fastapi.routing import APIRoute
from starlette.routing import Route

from tests.awe.web.conftest import PASSWORD, log_in
from tests.conftest import _autocommit_engine

HOST = "http://testserver"

INJECTIONS = (
    "' OR 1=1 --",
    '"; DROP TABLE dbobject; --',
    "<script>alert(1)</script>",
    "{{7*7}}",
    "zz{{7*7}}zz",
    "{% raw %}zz{{ 7*7 }}zz",
    "../../etc/passwd",
    "%00",
    "x\x00y",
    "\u202egnp.exe",
    "é" * 50_000,
    "A" * 200_000,
)
"""SQL, HTML, template and path injection, NUL (as text and as a byte), a
right-to-left override, and huge strings."""

SCRIPT = "<script>alert(1)</script>"
TEMPLATE_RESULT = "zz49zz"
PASSWD = "root:x:0:"

JUDGING = re.compile(r"/valid")
"""Routes that set a product's validity or validity window. Alice may: so she posts
their forms without ``confirm`` (a page asking to confirm, nothing changes) and never
their JSON API (which changes at once); bob, who may judge nothing here, posts
everything to them."""

NEEDS_LOGIN = [("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/api/jobs/{job_id}"),
               ("POST", "/api/jobs/{job_id}/cancel"), ("POST", "/api/context"),
               ("POST", "/api/objects/{object_id}/validity"),
               ("POST", "/api/objects/{object_id}/validity-window")]
"""The API calls that need a user: without a session they answer 401."""


# -- the app's routes -------------------------------------------------------------------

def app_routes(app):
    """``(method, path, route)`` of every route of ``app`` but HEAD, descending into
    included routers (FastAPI keeps those as routes of their own)."""
    def walk(routes, prefix):
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                yield from walk(inner.routes, prefix + route.include_context.prefix)
            elif isinstance(route, Route):  # APIRoute too
                for method in sorted(route.methods - {"HEAD"}):
                    yield method, prefix + route.path, route
    return list(walk(app.routes, ""))


def route_fields(route):
    """``{"query": [...], "path": [...], "form": [...], "json": {field: annotation}}``:
    what a request to ``route`` may carry, from its dependencies (by alias)."""
    found = {"query": [], "path": [], "form": [], "json": {}}
    if not isinstance(route, APIRoute):
        return found

    def collect(dependant):
        found["query"] += [p.alias for p in dependant.query_params]
        found["path"] += [p.alias for p in dependant.path_params]
        for param in dependant.body_params:
            annotation = param.field_info.annotation
            if isinstance(param.field_info, params.Form):
                found["form"].append(param.alias)
            elif isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
                found["json"].update({name: field.annotation for name, field
                                      in annotation.model_fields.items()})
            else:
                found["json"][param.alias] = annotation
        for sub in dependant.dependencies:
            collect(sub)

    collect(route.dependant)
    return found


def example_body(route):
    """A JSON body ``route`` accepts as well formed: each required field of its model
    with a plain value of its type."""
    body = {}
    for param in getattr(route, "dependant", None) and route.dependant.body_params or []:
        model = param.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            continue
        for name, field in model.model_fields.items():
            if field.is_required():
                body[name] = _plain(field.annotation)
    return body


def _plain(annotation):
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)[0]
    text = str(annotation)
    if "datetime" in text:
        return "2024-03-11T12:00:00+00:00"
    if annotation is int:
        return 1
    if annotation is float:
        return 1.0
    return "x"


# -- sessions -------------------------------------------------------------------------

class Browser:
    """One user's session on the module's in-process app: its own cookies (they are
    swapped into the shared client for each request), its CSRF token."""

    def __init__(self, client, user=None):
        self.client, self.user = client, user
        self.client.cookies = httpx.Cookies()
        if user is None:
            self.token = self.client.get("/api/context").json()["csrf_token"]
        else:
            self.token = log_in(self.client, user)
        self.cookies = self.client.cookies

    def request(self, method, url, *, csrf=True, **kwargs):
        """Send as this user (with the CSRF header unless ``csrf`` is false); a 5xx
        the TestClient raises comes back as an `AssertionError` naming the request."""
        headers = dict(kwargs.pop("headers", None) or {})
        if csrf and method != "GET" and "data" not in kwargs:
            headers.setdefault("X-CSRF-Token", self.token)
        self.client.cookies = self.cookies
        try:
            return self.client.request(method, url, headers=headers,
                                       follow_redirects=False, **kwargs)
        except Exception as err:  # the TestClient re-raises the app's errors: a 500
            frames = traceback.extract_tb(err.__traceback__)
            where = next((f"{f.filename}:{f.lineno} {f.line}" for f in reversed(frames)
                          if "/awe/" in f.filename or "/targets/" in f.filename
                          or "/persistence/" in f.filename), "")
            raise AssertionError(f"{method} {_short(url)} as {self.user or 'anonymous'} "
                                 f"({_short(kwargs)}) raised {err!r} at {where}") from err
        finally:
            self.cookies = self.client.cookies

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)

    def form(self, url, fields, *, csrf=True):
        """POST ``fields`` as a form (with the ``csrf_token`` field unless ``csrf`` is
        false)."""
        data = {**fields, **({"csrf_token": self.token} if csrf else {})}
        return self.request("POST", url, data=data)


def _short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


@pytest.fixture(scope="module")
def app_client(site):
    """The module's in-process client of the site's app (running no jobs)."""
    with pytest.MonkeyPatch.context() as monkeypatch, \
            site.client(monkeypatch, run_jobs=False) as client:
        yield client


@pytest.fixture
def browser(app_client):
    """``browser(user)``: a new `Browser` of ``user`` (None: not logged in)."""
    return lambda user=None: Browser(app_client, user)


@pytest.fixture(scope="module")
def alice_job(site, app_client):
    """The id of a job of alice's, queued (the app runs none); cancelled after."""
    alice = Browser(app_client, "alice")
    response = alice.post("/api/jobs", json={"target": "MasterBias"})
    assert response.status_code == 201, response.text
    job_id = response.json()["object_id"]
    yield job_id
    alice = Browser(app_client, "alice")
    for job in alice.get("/api/jobs").json():
        if job["state"] in ("queued", "running"):
            alice.post(f"/api/jobs/{job['object_id']}/cancel")


def product_ids(site):
    """``{name: object id}`` of alice's products, one of each kind the site has."""
    facts = site.facts
    return {"raw frame": facts["frame"], "master flat": facts["flat"],
            "calibrated exposure": facts["exposure"], "source list": facts["sourcelist"],
            "object": facts["objects"][0]}


def filled(path, site, job, /, **fixed):
    """``path`` with its ids those of alice's things, a master flat (a calibration
    product: its validity and window exist) and the job ``job``, unless ``fixed``."""
    values = {"object_id": site.facts["flat"], "job_id": job, "extension": "csv", **fixed}
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), path)


# -- CSRF and log-in -------------------------------------------------------------------

def _posts(app_client):
    return [(method, path) for method, path, _ in app_routes(app_client.app)
            if method != "GET"]


def test_every_post_refuses_a_request_without_the_csrf_token(site, app_client, browser,
                                                           alice_job):
    """Anonymous or logged in, a POST without the token, or with another session's,
    is refused (403) and changes nothing; a form's field counts as the header."""
    posts = _posts(app_client)
    assert ("POST", "/login") in posts and ("POST", "/api/jobs") in posts
    bob = browser("bob")
    wrong = []
    for user in (None, "alice"):
        who = browser(user)
        for method, path in posts:
            url = filled(path, site, alice_job)
            for how, response in (
                    ("no token", who.request(method, url, csrf=False)),
                    ("no token, a form", who.request(method, url, csrf=False,
                                                     data={"csrf_token": ""})),
                    ("bob's token", who.request(method, url, csrf=False,
                                                headers={"X-CSRF-Token": bob.token})),
                    ("bob's token, a form", who.request(
                        method, url, data={"csrf_token": bob.token}))):
                if response.status_code != 403:
                    wrong.append(f"{method} {url} as {user or 'anonymous'} with {how}: "
                                 f"{response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)
    alice = browser("alice")
    assert alice.get(f"/api/jobs/{alice_job}").json()["state"] == "queued"


def test_api_calls_that_need_a_user_answer_401_without_a_session(site, browser,
                                                                 alice_job, app_client):
    routes = {(m, p): r for m, p, r in app_routes(app_client.app)}
    missing = [call for call in NEEDS_LOGIN if call not in routes]
    assert not missing, f"routes gone (update NEEDS_LOGIN): {missing}"
    anonymous = browser()
    for method, path in NEEDS_LOGIN:
        body = example_body(routes[method, path]) if method == "POST" else None
        response = anonymous.request(method, filled(path, site, alice_job), json=body)
        assert response.status_code == 401, (method, path, response.text[:200])
        assert response.json()["error"] == "not logged in"
    assert anonymous.get("/jobs").status_code == 401


# -- reading and changing what one may not ----------------------------------------------

def test_bob_and_anonymous_cannot_read_alices_products(site, browser, app_client):
    """Every GET route with an object id, for alice's products of each kind: 404 for
    bob (VIKING) and anonymous, as if they did not exist; alice gets her pages."""
    paths = [p for m, p, _ in app_routes(app_client.app)
             if m == "GET" and "{object_id}" in p]
    assert {"/objects/{object_id}", "/api/objects/{object_id}",
            "/objects/{object_id}/preview.png",
            "/objects/{object_id}/sources.{extension}"} <= set(paths)
    alice, bob, anonymous = browser("alice"), browser("bob"), browser()
    for name, object_id in product_ids(site).items():
        for page in ("/objects/{object_id}", "/api/objects/{object_id}"):
            response = alice.get(filled(page, site, None, object_id=object_id))
            assert response.status_code == 200, (name, page, response.text[:200])
        for path in paths:
            for extension in ("csv", "fits", "xml") if "{extension}" in path else ("csv",):
                url = filled(path, site, None, object_id=object_id, extension=extension)
                nowhere = filled(path, site, None, object_id=NOWHERE, extension=extension)
                for who in (bob, anonymous):
                    response, missing = who.get(url), who.get(nowhere)
                    assert response.status_code == 404, \
                        (who.user, name, url, response.status_code, response.text[:200])
                    assert _message(response, object_id) == _message(missing, NOWHERE), \
                        f"{url}: bob learns that {object_id} exists"
    # the downloads and preview do work for her (so the 404s above are about bob)
    facts = site.facts
    assert alice.get(f"/objects/{facts['sourcelist']}/sources.csv").status_code == 200
    assert alice.get(f"/objects/{facts['exposure']}/preview.png").status_code == 200


NOWHERE = 2 ** 62
"""An object id no object has."""


def _message(response, object_id):
    """The error message of an answer, whatever the id in it."""
    if response.headers.get("content-type", "").startswith("application/json"):
        text = response.json()["message"]
    else:
        found = re.search(r'<p class="error"[^>]*>(.*?)</p>', response.text, re.DOTALL)
        text = found.group(1) if found else response.text
    return text.replace(str(object_id), "ID")


def test_bob_cannot_see_or_cancel_alices_jobs(browser, alice_job):
    bob, carol = browser("bob"), browser("carol")
    assert bob.get(f"/api/jobs/{alice_job}").status_code == 404
    assert bob.get(f"/jobs/{alice_job}").status_code == 404
    assert bob.post(f"/api/jobs/{alice_job}/cancel").status_code == 404
    assert bob.form(f"/jobs/{alice_job}/cancel", {}).status_code == 404
    assert alice_job not in [job["object_id"] for job in bob.get("/api/jobs").json()]
    assert f"/jobs/{alice_job}" not in bob.get("/jobs").text
    # still queued, and KIDS's manager does see it
    assert carol.get(f"/api/jobs/{alice_job}").json()["state"] == "queued"


def test_bob_cannot_switch_to_kids_nor_to_privileges_3(browser):
    bob = browser("bob")
    for change in ({"project": "KIDS"}, {"privileges": 3}, {"privileges": 4},
                   {"project": "KIDS", "privileges": 1}):
        response = bob.post("/api/context", json=change)
        assert response.status_code == 403, (change, response.text)
    for fields in ({"project": "KIDS"}, {"privileges": "3"}):
        response = bob.form("/context", fields)
        assert response.status_code == 403, (fields, response.text[:300])
    context = bob.get("/api/context").json()
    assert (context["user"], context["project"], context["privileges"]) == ("bob", "VIKING", 2)


def test_bob_cannot_judge_alices_products(site, browser):
    bob = browser("bob")
    flat = site.facts["flat"]
    for path, body in ((f"/api/objects/{flat}/validity", {"is_valid": 0, "comment": "x"}),
                       (f"/api/objects/{flat}/validity-window",
                        {"start": "2000-01-01T00:00:00Z", "end": "2001-01-01T00:00:00Z"})):
        assert bob.post(path, json=body).status_code == 404
    for path, fields in ((f"/objects/{flat}/validity", {"is_valid": "0", "confirm": "1"}),
                         (f"/objects/{flat}/validity-window",
                          {"start": "2000-01-01T00:00", "end": "2001-01-01T00:00",
                           "confirm": "1"})):
        assert bob.form(path, fields).status_code == 404
    assert browser("alice").get(f"/api/objects/{flat}").json()["is_valid"] != 0


def test_anonymous_sees_no_kids_products(site, browser):
    alice, anonymous = browser("alice"), browser()
    facts = site.facts
    assert "Recent products" in alice.get("/").text
    home = anonymous.get("/")
    assert home.status_code == 200
    assert "Recent products" not in home.text and "KIDS" not in home.text
    assert not re.search(r'href="/objects/\d+"', home.text)
    trend = {"cls": "CalibratedExposure", "x": "date_obs", "y": "seeing"}
    assert alice.get("/api/trend", params=trend).json()["object_id"]
    assert anonymous.get("/api/trend", params=trend).json()["object_id"] == []
    assert browser("bob").get("/api/trend", params=trend).json()["object_id"] == []
    cone = {"RA": facts["ra"], "DEC": facts["dec"], "SR": 0.05}
    for path in ("/scs/objects", "/scs/sources"):
        mine, theirs = alice.get(path, params=cone), anonymous.get(path, params=cone)
        assert mine.status_code == theirs.status_code == 200
        assert "<TR>" in mine.text and "<TR>" not in theirs.text, path
    timeline = {"type": "MasterFlat", "chip": facts["flat_chip"]}
    flat = f'href="/objects/{facts["flat"]}"'
    assert flat in alice.get("/calts", params=timeline).text
    assert flat not in anonymous.get("/calts", params=timeline).text
    plan = {"target": "SourceList", "ra": facts["ra"], "dec": facts["dec"], "radius": 0.02}
    response = anonymous.post("/api/plan", json=plan)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:  # the raw frames are KIDS's too: nothing to plan
        assert not response.json()["nodes"]
    assert anonymous.get("/api/context").json()["projects"] == {}


# -- sessions and log-in ----------------------------------------------------------------

def _flip(text, at):
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


def test_a_forged_or_tampered_session_is_anonymous(site, browser):
    """Alice's cookie with a changed payload or signature, an unsigned one and one
    signed with another key: all not logged in, and none may change anything."""
    import itsdangerous

    alice = browser("alice")
    cookie = alice.cookies["awe_session"]
    payload, _, signature = cookie.partition(".")
    claims = {"user": "alice", "project": "KIDS", "privileges": 2, "csrf": "t"}
    encoded = base64.b64encode(json.dumps(claims).encode()).decode()
    forgeries = {
        "payload changed": _flip(cookie, len(payload) // 2),
        "signature changed": _flip(cookie, len(cookie) - 3),
        "payload alone": payload,
        "made up, unsigned": encoded,
        "made up, alice's signature": f"{encoded}.{signature}",
        "signed with another key": itsdangerous.TimestampSigner("not the key").sign(
            encoded.encode()).decode(),
    }
    domain = next(c.domain for c in alice.cookies.jar if c.name == "awe_session")
    for what, forged in forgeries.items():
        who = browser()
        who.cookies.set("awe_session", forged, domain=domain)
        context = who.get("/api/context").json()
        assert context["user"] is None, what
        assert who.get("/api/jobs").status_code == 401, what
        response = who.post("/api/context", json={"privileges": 1},
                            headers={"X-CSRF-Token": "t"})
        assert response.status_code in (401, 403), what


def test_a_wrong_password_does_not_say_which_was_wrong(browser):
    answers = {}
    for username, password in (("alice", "wrong"), ("nosuchuser", "wrong"),
                               ("nosuchuser", PASSWORD), ("alice", PASSWORD.upper()),
                               ("Alice", PASSWORD), ("alice ", PASSWORD)):
        who = browser()
        response = who.form("/login", {"username": username, "password": password,
                                       "next": "/"})
        error = re.search(r'<p class="error" id="error">(.*?)</p>', response.text, re.DOTALL)
        answers[username, password] = (response.status_code, error and error.group(1))
        assert who.get("/api/context").json()["user"] is None
    assert len(set(answers.values())) == 1, answers
    status, message = next(iter(answers.values()))
    assert status in (200, 401) and message == "wrong user name or password"


OPEN_REDIRECTS = ("//evil.example", "http://evil.example", "https://evil.example/",
                  "//evil.example/%2e%2e", "/\\evil.example", "\\\\evil.example",
                  "/\t/evil.example", "/\n/evil.example", " //evil.example",
                  "http:evil.example", "javascript:alert(1)", "\\/evil.example",
                  "%2F%2Fevil.example", "///evil.example", "https:/\\evil.example")


def _stays_here(location):
    url = urlsplit(urljoin(f"{HOST}/", location))
    return url.scheme == "http" and url.netloc == "testserver"


def test_next_cannot_redirect_off_the_site(browser):
    for target in OPEN_REDIRECTS:
        who = browser()
        page = who.get("/login", params={"next": target})  # the form posts it back
        assert not re.search(r'(href|action)="[^"]*evil', page.text), target
        response = who.form("/login", {"username": "alice", "password": PASSWORD,
                                       "next": target})
        assert response.status_code == 303, (target, response.text[:200])
        location = response.headers["location"]
        assert _stays_here(location), (target, location)
        if target in ("//evil.example", "http://evil.example"):
            assert location == "/", (target, location)
    alice = browser("alice")
    for referer in ("http://evil.example/", "//evil.example", "http://testserver//evil.example"):
        response = alice.request("POST", "/context", headers={"Referer": referer},
                                 data={"privileges": "2", "csrf_token": alice.token})
        assert response.status_code == 303, response.text[:200]
        assert _stays_here(response.headers["location"]), (referer, response.headers)


# -- injections ---------------------------------------------------------------------------

class _Forms(html.parser.HTMLParser):
    """The forms of a page: ``{"action", "method", "fields": {name: default}}``; a
    select's default is its selected option (else its first); buttons' names are
    fields without a default (a submission carries one only when clicked)."""

    def __init__(self):
        super().__init__()
        self.forms, self.form, self.select, self.textarea = [], None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.form = {"action": attrs.get("action", ""),
                         "method": attrs.get("method", "get").upper(), "fields": {}}
            self.forms.append(self.form)
        elif self.form is None or "form" in attrs:
            return
        elif tag == "input" and attrs.get("name"):
            self.form["fields"].setdefault(attrs["name"], attrs.get("value") or "")
        elif tag == "button" and attrs.get("name"):
            self.form["fields"].setdefault(attrs["name"], None)
        elif tag == "select" and attrs.get("name"):
            self.select = attrs["name"]
            self.form["fields"].setdefault(self.select, None)
        elif tag == "option" and self.select:
            value = attrs.get("value")
            if "selected" in attrs or self.form["fields"][self.select] is None:
                self.form["fields"][self.select] = value if value is not None else "\0text"
        elif tag == "textarea" and attrs.get("name"):
            self.textarea = attrs["name"]
            self.form["fields"].setdefault(self.textarea, "")

    def handle_data(self, data):
        if self.select and self.form and self.form["fields"].get(self.select) == "\0text":
            self.form["fields"][self.select] = data.strip()

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def page_forms(text):
    parser = _Forms()
    parser.feed(text)
    return parser.forms


def _problems(response, payload, what):
    """What is wrong with ``response`` to an injection: a 5xx, a script or a template
    evaluated into a page, a file of the server's."""
    found = []
    if response.status_code >= 500:
        found.append(f"{response.status_code}")
    content_type = response.headers.get("content-type", "")
    if content_type.startswith(("image/", "application/fits")):
        return [f"{what}: {p}" for p in found]
    text = response.text
    if "html" in content_type and SCRIPT in text:
        found.append("echoes <script> unescaped into a page")
    if TEMPLATE_RESULT in text:
        found.append("evaluated {{7*7}}")
    if PASSWD in text:
        found.append("shows /etc/passwd")
    return [f"{what} -> {response.status_code}: {p}" for p in found]


def database_state(url):
    """``(rows per table, {table: curation columns of every row})``: the state the
    injections must leave as it was (rows may be added: jobs, never lost)."""
    engine = _autocommit_engine(url, poolclass=sa.pool.NullPool)
    counts, judged = {}, {}
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            for table in inspector.get_table_names():
                columns = {c["name"] for c in inspector.get_columns(table)}
                counts[table] = conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')
                                             ).scalar()
                kept = sorted(columns & {"is_valid", "timestamp_start", "timestamp_end",
                                         "privileges", "project", "owner", "comment"})
                if kept and "object_id" in columns:
                    judged[table] = conn.execute(sa.text(
                        f'SELECT object_id, {", ".join(kept)} FROM "{table}" '
                        "ORDER BY object_id")).all()
    finally:
        engine.dispose()
    return counts, judged


BASELINE = {"username": "alice", "password": "not her password",
            "cls": "CalibratedExposure", "x": "date_obs", "y": "seeing", "where": "filter == r"}
"""Values the other fields of a request keep while one gets an injection, so that it
gets past the first check (a page's own defaults are empty for these)."""


def page_forms_of_the_site(site, app_client, alice, job_id):
    """``{(method, action): {field: default}}`` of every form on every page alice can
    open (one object's forms stand for every object's)."""
    pages = {"/"}
    for method, path, _ in app_routes(app_client.app):
        if method == "GET" and not path.startswith(("/docs", "/redoc", "/openapi")):
            if "{object_id}" in path:
                pages.update(filled(path, site, job_id, object_id=i)
                             for i in product_ids(site).values())
            else:
                pages.add(filled(path, site, job_id))
    forms, shapes = {}, {}
    for url in sorted(pages):
        response = alice.get(url)
        if "html" not in response.headers.get("content-type", ""):
            continue
        for form in page_forms(response.text):
            action = urlsplit(urljoin(HOST + url, form["action"] or url)).path
            shape = shapes.setdefault((form["method"], re.sub(r"/\d+", "/N", action)), action)
            if shape == action:
                fields = {k: v for k, v in form["fields"].items() if k != "csrf_token"}
                forms.setdefault((form["method"], action), {}).update(fields)
    return forms


def _requests(site, app_client, alice, job_id):
    """``(how, method, url, baseline)`` to inject into, field by field: every form of
    every page, and every route's declared query parameters, form fields, JSON fields
    and path parameters (``how``: form, query, json or path)."""
    forms = page_forms_of_the_site(site, app_client, alice, job_id)
    forms.setdefault(("POST", "/process"), {})["only"] = None  # the plan's check boxes
    for (method, action), fields in sorted(forms.items()):
        if "par." in "".join(fields):  # the process form: the chosen target's only
            target = fields.get("target") or ""
            fields = {k: v for k, v in fields.items()
                      if not k.startswith("par.") or k.startswith(f"par.{target}.")}
        baseline = _baseline(fields)
        if method == "GET":  # empty fields left out: see test_get_forms_work_as_shown
            fields = {k: v for k, v in fields.items() if v}
        yield "form", method, action, fields | baseline
    for method, path, route in app_routes(app_client.app):
        if path.startswith(("/docs", "/redoc", "/openapi", "/static")):
            continue
        fields = route_fields(route)
        url = filled(path, site, job_id)
        if fields["query"]:
            shown = {k: v for k, v in forms.get((method, url), {}).items()
                     if v and k in fields["query"]}
            yield "query", method, url, shown | _baseline(fields["query"]) | {
                name: None for name in fields["query"] if name not in shown}
        if fields["form"]:
            yield "form", method, url, {name: "" for name in fields["form"]} | _baseline(
                fields["form"])
        if fields["json"]:
            body = example_body(route)
            yield "json", method, url, body | {
                name: None for name in fields["json"] if name not in body}
        for name in fields["path"]:
            yield "path", method, path, {name: None}



def _get_forms(site, app_client, browser, alice_job):
    alice = browser("alice")
    forms = page_forms_of_the_site(site, app_client, alice, alice_job)
    return alice, {key: fields for key, fields in forms.items() if key[0] == "GET"}


def test_get_forms_work_as_shown(site, app_client, browser, alice_job):
    """Every GET form of every page, sent as a browser sends it unchanged (empty
    fields included): a page, or one saying what to fill in (400), never 422: the
    app accepts what its own forms send. (The injections leave empty fields out, so
    that they get past this.)"""
    alice, forms = _get_forms(site, app_client, browser, alice_job)
    assert ("GET", "/trend") in forms
    for (method, action), fields in sorted(forms.items()):
        response = alice.get(action, params={k: v or "" for k, v in fields.items()})
        assert response.status_code in (200, 400), (action, fields, response.text[:300])


def _baseline(names):
    return {name: BASELINE[name] for name in names if name in BASELINE}


def test_injections_are_harmless(site, app_client, browser, alice_job):
    """Every injection string in every form field, query parameter, JSON field and
    path parameter of every route: no 5xx, no script or template evaluated into a
    page, no file of the server's shown; and the database keeps every row and every
    product's validity. Alice sends them; to the routes that judge products she
    posts the forms only, without ``confirm`` (a page asking to confirm: the place a
    comment is echoed), and bob sends everything."""
    before = database_state(site.url)
    alice, bob = browser("alice"), browser("bob")
    problems, sent, answers = [], 0, collections.Counter()
    for how, method, url, fields in list(_requests(site, app_client, alice, alice_job)):
        judging = JUDGING.search(url)
        users = ([alice] if how == "form" else []) + [bob] if judging else [alice]
        for name in fields:
            if how == "form" and name == "confirm":
                continue  # alice confirms nothing; bob's confirm is below
            for payload, who in itertools.product(_payloads(name), users):
                who = alice if who is alice else bob  # alice may have been renewed
                response = _inject(who, how, method, url, fields, name, payload, site,
                                   alice_job)
                sent += 1
                answers[method, re.sub(r"/\d+", "/N", url), how, who.user,
                        response.status_code] += 1
                problems += _problems(response, payload,
                                      f"{method} {_short(url, 80)} {how} {name}="
                                      f"{_short(payload, 40)} as {who.user}")
                if who is alice and method != "GET" and \
                        who.get("/api/context").json()["user"] != "alice":
                    alice = browser("alice")  # a post logged her out: log in again
    for payload in INJECTIONS:  # bob confirming a validity change: refused
        for path in ("/objects/{object_id}/validity", "/objects/{object_id}/validity-window"):
            url = filled(path, site, alice_job)
            response = bob.form(url, {"is_valid": "0", "start": "2000-01-01T00:00",
                                      "end": "2001-01-01T00:00", "confirm": "1",
                                      "comment": payload})
            problems += _problems(response, payload, f"POST {url} confirm as bob")
            assert response.status_code in (404, 422), response.text[:200]
    print(f"{sent} injections; answers (method, path, where, user, status: count):")
    for answer, count in sorted(answers.items()):
        print(" ", *answer, count)
    assert sent > 500
    assert not problems, "\n".join(problems[:50])
    after = database_state(site.url)
    assert set(after[0]) == set(before[0]), "tables gone"
    assert all(after[0][t] >= before[0][t] for t in before[0]), (before[0], after[0])
    for table, rows in before[1].items():
        assert set(rows) <= set(after[1][table]), \
            f"{table}: a product's validity, window, owner or visibility changed"


EMBEDDED = {"where": "filter == {}"}
"""Fields whose value is itself a little language: the injections also go where a
value goes in it."""


def _payloads(name):
    return INJECTIONS + tuple(EMBEDDED[name].format(p) for p in INJECTIONS
                              if name in EMBEDDED)


URL_LENGTH = 4000
"""Characters of a huge string that go into a URL (an HTTP client sends at most 64 KiB
of query, percent-encoded)."""


def _inject(who, how, method, url, fields, name, payload, site, job_id):
    if how in ("path", "query") or method == "GET":
        payload = payload[:URL_LENGTH]
    if how == "path":
        return who.request(method, filled(url, site, job_id, **{name: quote(payload, safe="")}))
    values = {k: v for k, v in fields.items() if v is not None and k != "confirm"}
    values[name] = payload
    if how == "query":
        return who.request(method, url, params=values)
    if how == "json":
        return who.request(method, url, json=values)
    if method == "GET":
        return who.request("GET", url, params=values)
    return who.form(url, values)
