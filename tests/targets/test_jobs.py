"""The job queue: jobs run as their owner by a runner, record progress, products and
errors, can be cancelled, and survive a restart of the runner. On both databases."""

import time

import pytest
from astropy.io import fits

import persistence
from awe.environment import add_user
from persistence import Context
from targets import Job, JobRunner, ProcessingRequest, cancel_job, run_job, submit_job
from targets.calibration import MasterBias, MasterFlat
from targets.ingest import ingest


@pytest.fixture
def kids(store, simulated_night):
    """Users of project KIDS (alice) and VIKING (bob); alice ingested the night's
    biases and flats for her project (privileges 2)."""
    db = store
    add_user(db, "alice", "KIDS", "calibrator")
    add_user(db, "bob", "VIKING", "member")
    db.context = Context(user="alice", project="KIDS", privileges=2)
    ingest([p for p in simulated_night.raw if fits.getval(p, "IMAGETYP") in ("BIAS", "FLAT")])
    return db


def test_a_job_runs_as_its_owner_and_records_its_products(kids):
    job = submit_job(ProcessingRequest("MasterBias", chip="ccd1"))
    assert (job.state, job.owner, job.project, job.product_privileges) == \
        ("queued", "alice", "KIDS", 2)
    run_job(job)
    again = Job.load(job.object_id)
    assert again.state == "done", again.log
    (bias,) = again.products
    assert isinstance(bias, MasterBias) and bias.chip.name == "ccd1"
    assert (bias.owner, bias.project, bias.privileges) == ("alice", "KIDS", 2)
    assert (again.done, again.total) == (1, 1)
    assert "made MasterBias(chip=ccd1" in again.log and again.started <= again.finished


def test_a_failed_job_says_what_failed_and_makes_nothing(kids, simulated_night):
    science = [p for p in simulated_night.raw if fits.getval(p, "IMAGETYP") == "OBJECT"]
    ingest(science[:1])  # without the reference catalogue its astrometry needs
    job = submit_job(ProcessingRequest("CalibratedExposure"))
    run_job(job)
    again = Job.load(job.object_id)
    assert again.state == "failed"
    assert again.error.startswith("MissingInputError: cannot make CalibratedExposure(")
    assert "ReferenceCatalogue" in again.error and "failed: " in again.log
    assert MasterBias.all().count() == 0, "nothing is made when an input is missing"


def test_other_projects_do_not_see_a_job(kids):
    job = submit_job(ProcessingRequest("MasterBias", chip="ccd1"))
    with kids.acting_as(Context(user="bob", project="VIKING")):
        assert Job.all().count() == 0
        with pytest.raises(persistence.ObjectNotFoundError):
            Job.load(job.object_id)


def test_a_queued_job_cancels_at_once_a_running_one_after_its_product(kids):
    queued = submit_job(ProcessingRequest("MasterBias", chip="ccd2"))
    cancel_job(queued)
    assert Job.load(queued.object_id).state == "cancelled"

    job = submit_job(ProcessingRequest("MasterFlat"))  # 2 biases, then 4 flats
    runner = JobRunner(lambda context: kids.acting_as(context), poll=0.1).start()
    try:
        _wait(lambda: Job.load(job.object_id).done >= 1)
        cancel_job(Job.load(job.object_id))
        _wait(lambda: Job.load(job.object_id).is_finished)
    finally:
        runner.stop(timeout=60)
    again = Job.load(job.object_id)
    assert again.state == "cancelled" and 1 <= again.done < again.total == 6
    assert MasterBias.all().count() + MasterFlat.all().count() == again.done, \
        "what was made is kept"
    assert Job.load(queued.object_id).state == "cancelled", "never run"


def test_a_runner_takes_up_the_jobs_an_earlier_one_left_running(kids):
    job = submit_job(ProcessingRequest("MasterBias", chip="ccd1"))
    job.state = "running"  # as a runner that died leaves it
    job.commit()
    runner = JobRunner(lambda context: kids.acting_as(context), poll=0.1).start()
    try:
        _wait(lambda: Job.load(job.object_id).is_finished)
    finally:
        runner.stop(timeout=60)
    again = Job.load(job.object_id)
    assert again.state == "done"
    assert "queued again: the runner stopped while it was running" in again.log


def _wait(condition, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)

