"""Target processing through the JSON API: plans, jobs, the context switch."""

import time

from tests.awe.web.conftest import log_in


def wait_for_job(client, job_id, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_plan_of_the_reduced_night_is_up_to_date(site, app_client):
    log_in(app_client, "alice")
    facts = site.facts
    response = app_client.post("/api/plan", json={
        "target": "SourceList", "ra": facts["ra"], "dec": facts["dec"], "radius": 0.02})
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["counts"]["up to date"] == len(plan["nodes"]) > 0
