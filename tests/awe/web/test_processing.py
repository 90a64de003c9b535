"""Target processing through the pages and the JSON API: the form and its plan tree,
jobs (run in the server as their owner, cancelled, kept across a restart), the
context switch. On both databases, against the real app."""

import json
import re
import time

import pytest
import sqlalchemy as sa

from tests.awe.web.conftest import api_plan, log_in


def row_of(site, object_id):
    """``(owner, project, privileges)`` of an object, read by SQL as the site's owner."""
    engine = sa.create_engine(site.url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(
                "SELECT owner, project, privileges FROM dbobject WHERE object_id = :id"),
                {"id": object_id}).one())
    finally:
        engine.dispose()


def wait_for_job(client, job_id, timeout=600):
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {job}"
        time.sleep(0.3)


def test_plan_of_what_the_site_reduced_is_up_to_date(site, app_client):
    log_in(app_client, "alice")
    facts = site.facts
    response = api_plan(app_client, target="SourceList", ra=facts["ra"], dec=facts["dec"],
                        radius=0.02)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["counts"]["up to date"] == len(plan["nodes"]) > 0
    roots = [plan["nodes"][i] for i in plan["roots"]]
    assert {r["class"] for r in roots} == {"SourceList"}
    assert all(r["object_id"] for r in roots)


def test_the_form_shows_the_plan_tree_with_counts_and_states(site, app_client):
    token = log_in(app_client, "alice")
    page = app_client.post("/process", data={
        "csrf_token": token, "action": "query", "target": "CalibratedExposure",
        "instrument": "SIMCAM", "chip": "ccd1", "filter": site.facts["filter"],
        "first_night": site.facts["night"], "last_night": site.facts["night"]})
    assert page.status_code == 200
    counts = dict(re.findall(r'data-state="([^"]+)">[^:]+: <b>(\d+)</b>', page.text))
    plan = api_plan(app_client, target="CalibratedExposure", instrument="SIMCAM",
                    chip="ccd1", filter=site.facts["filter"],
                    first_night=site.facts["night"], last_night=site.facts["night"]).json()
    assert {k: int(v) for k, v in counts.items()} == plan["counts"]
    assert counts["up to date"] != "0"
    assert page.text.count('class="node ') >= len(plan["roots"])
    assert f'href="/objects/{site.facts["exposure"]}"' in page.text


def test_a_bad_selection_is_explained_on_the_form(site, app_client):
    token = log_in(app_client, "alice")
    page = app_client.post("/process", data={
        "csrf_token": token, "action": "query", "target": "MasterBias", "chip": "ccd9"})
    assert page.status_code == 200
    assert "no raw data matches MasterBias(chip=ccd9)" in page.text
    api = api_plan(app_client, target="MasterBias", chip="ccd9")
    assert api.status_code == 400 and "Widen the selection" in api.json()["message"]
    bad = api_plan(app_client, target="MasterFlat", pars={"sigma_clip": 1})
    assert bad.status_code == 400 and "did you mean sigma" in bad.json()["message"]


def test_a_job_runs_as_its_owner_and_the_queue_shows_it(site, app_client, monkeypatch):
    token = log_in(app_client, "alice")
    response = app_client.post("/api/jobs", headers={"X-CSRF-Token": token},
                               json={"target": "MasterBias", "chip": "ccd2"})
    assert response.status_code == 201, response.text
    job = wait_for_job(app_client, response.json()["object_id"])
    assert job["state"] == "done", job["log"]
    (bias,) = job["products"]
    assert row_of(site, bias) == ("alice", "KIDS", 2), "made as alice, at her privileges"
    page = app_client.get("/jobs")
    assert f'data-job="{job["object_id"]}"' in page.text
    with site.client(monkeypatch, run_jobs=False) as other:
        log_in(other, "carol")  # KIDS's manager sees the project's jobs
        assert job["object_id"] in [j["object_id"] for j in other.get("/api/jobs").json()]
        log_in(other, "bob")
        assert other.get(f"/api/jobs/{job['object_id']}").status_code == 404
        assert other.get("/api/jobs").json() == []


def test_ticked_nodes_alone_are_processed(site, app_client):
    token = log_in(app_client, "alice")
    plan = api_plan(app_client, target="HotPixelMap").json()
    node = next(n for n in plan["nodes"] if n["class"] == "HotPixelMap")
    page = app_client.post("/process", data={
        "csrf_token": token, "action": "process-ticked", "target": "HotPixelMap",
        "only": json.dumps(node["target"])}, follow_redirects=False)
    assert page.status_code == 303
    job_id = int(page.headers["location"].split("submitted=")[1])
    job = wait_for_job(app_client, job_id)
    assert job["state"] == "done" and len(job["products"]) == 1
    assert "1 ticked" in job["label"]


def test_a_queued_job_waits_for_a_server_restart(site, monkeypatch):
    with site.client(monkeypatch, run_jobs=False) as client:
        token = log_in(client, "alice")
        job = client.post("/api/jobs", headers={"X-CSRF-Token": token},
                          json={"target": "MasterBias"}).json()
        time.sleep(1)
        assert client.get(f"/api/jobs/{job['object_id']}").json()["state"] == "queued"
    with site.client(monkeypatch) as client:  # the server starts again, with its runner
        log_in(client, "alice")
        assert wait_for_job(client, job["object_id"])["state"] == "done"


def test_cancelling_a_queued_job(site, monkeypatch):
    with site.client(monkeypatch, run_jobs=False) as client:
        token = log_in(client, "alice")
        job = client.post("/api/jobs", headers={"X-CSRF-Token": token},
                          json={"target": "MasterBias"}).json()
        cancelled = client.post(f"/api/jobs/{job['object_id']}/cancel",
                                headers={"X-CSRF-Token": token}).json()
        assert cancelled["state"] == "cancelled" and "cancelled by alice" in cancelled["log"]
        page = client.get(f"/jobs/{job['object_id']}")
        assert 'id="job-state"' in page.text and "cancelled" in page.text


@pytest.mark.parametrize("user, change, status, privileges", [
    ("alice", {"privileges": 3}, 403, 2),   # a calibrator publishes no further
    ("carol", {"privileges": 3}, 200, 3),   # a manager may
    ("bob", {"project": "KIDS"}, 403, 2),   # not a member
    ("alice", {"privileges": 1}, 200, 1),
])
def test_the_context_switch_keeps_to_the_users_roles(site, app_client, user, change,
                                                     status, privileges):
    token = log_in(app_client, user)
    response = app_client.post("/api/context", json=change, headers={"X-CSRF-Token": token})
    assert response.status_code == status, response.text
    assert app_client.get("/api/context").json()["privileges"] == privileges


def test_anonymous_may_look_but_not_process(site, app_client):
    assert app_client.get("/process").status_code == 200
    assert app_client.get("/api/jobs").status_code == 401
    token = app_client.get("/api/context").json()["csrf_token"]
    response = app_client.post("/api/jobs", headers={"X-CSRF-Token": token},
                               json={"target": "MasterBias"})
    assert response.status_code == 401
    plan = api_plan(app_client, target="MasterBias")
    assert plan.status_code == 400 and "no raw data matches" in plan.json()["message"], \
        "anonymous sees none of the KIDS raw data"
