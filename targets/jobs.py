"""The job queue: processing requests submitted to run later, on a DPU, by a runner.

A `Job` is a persistent object like a product, so the queue survives a restart of
the web server that holds the runner: a job is queued, running, done, failed or
cancelled, with its progress, log, products and error. The runner makes products as
the job's owner, in the job's project and at the privileges it was submitted with.
The database, not the runner, is the source of truth: a job that was running when
its runner stopped is queued again when a runner starts, and asking again resumes
(what was made is up to date).
"""

import datetime
import threading

from persistence import DBObject, Context, commit_all, current_database, persistent

from .dpu import Progress, SerialDPU
from .errors import TargetError
from .request import ProcessingRequest

__all__ = ["JOB_STATES", "Job", "JobCancelled", "JobRunner", "cancel_job", "run_job",
           "submit_job"]

JOB_STATES = ("queued", "running", "cancelling", "cancelled", "done", "failed")
"""What a job goes through: queued → running → done, failed or (cancelling →)
cancelled."""

_FINISHED = ("cancelled", "done", "failed")
_QUEUE_LOCK = "awe-job-queue"
"""The database lock under which a job changes from queued to anything else."""


class JobCancelled(TargetError):
    """Raised inside a running job when its owner cancelled it."""


class Job(DBObject):
    """A processing request submitted to run on a DPU; its owner and project are the
    submitter's, and its products are made as them."""

    request = persistent("The request: targets.ProcessingRequest as JSON", str, "")
    label = persistent("The request in words", str, "")
    product_privileges = persistent("Privileges of the products it makes (the "
                                    "submitter's at the time)", int, 1)
    state = persistent("queued, running, cancelling, cancelled, done or failed", str,
                       "queued", mutable=True)
    done = persistent("Products made so far", int, 0, mutable=True)
    total = persistent("Products to make (known once it runs)", int, 0, mutable=True)
    current = persistent("What it is making now", str, "", mutable=True)
    log = persistent("What happened, a line per event (UTC)", str, "", mutable=True)
    products = persistent("The products asked for, once up to date", [DBObject], [],
                          mutable=True)
    started = persistent("When it started running (UTC)", datetime.datetime, None,
                         mutable=True)
    finished = persistent("When it finished (UTC)", datetime.datetime, None, mutable=True)
    error = persistent("Why it failed", str, "", mutable=True)
    failed_target = persistent("The target whose making failed", str, "", mutable=True)

    @property
    def is_finished(self):
        return self.state in _FINISHED

    def processing_request(self):
        """Its `ProcessingRequest`."""
        return ProcessingRequest.from_json(self.request)

    def note(self, text):
        """Add a line to the log (written with the next commit)."""
        self.log = f"{self.log}{_now():%Y-%m-%d %H:%M:%S} {text}\n"


def submit_job(request):
    """Queue ``request`` (a `ProcessingRequest`) as a new `Job` of the context's user
    and project; return it. The job is visible to the project's members (privileges 2)
    when the user works in a project, else in MyDB."""
    db = current_database()
    context = db.context
    job = Job(request=request.to_json(), label=request.describe(),
              product_privileges=context.privileges,
              privileges=2 if context.project in db.memberships() else 1)
    job.note(f"submitted by {context.user} in project {context.project}")
    job.commit()
    return job


def cancel_job(job):
    """Ask ``job`` to stop: a queued job is cancelled at once, a running one after the
    product it is making (its runner notes it in the log, which it alone writes then)."""
    with current_database().named_lock(_QUEUE_LOCK):  # not while a runner takes it
        state = _state_of(job)
        if state == "queued":
            job.state, job.finished = "cancelled", _now()
            job.note(f"cancelled by {current_database().context.user} before it started")
        elif state == "running":
            job.state = "cancelling"
        else:
            return
        job.commit()


def _state_of(job):
    """The job's state in the database now (a runner may have changed it)."""
    found = (Job.object_id == job.object_id).columns("state")["state"]
    return found[0] if len(found) else None


class _JobProgress(Progress):
    """Progress written to the job's row, and where a cancel is noticed."""

    def __init__(self, job):
        super().__init__()
        self.job = job

    def start(self, total):
        super().start(total)
        self.job.total, self.job.done = total, 0
        self.write()

    def making(self, node):
        self.check_cancelled()
        self.job.current = node.label()
        self.write()

    def made(self, node):
        self.done += 1
        self.job.done = self.done
        self.job.note(f"made {node.label()} #{node.product.object_id}")
        self.write()
        self.check_cancelled()

    def finish(self):
        pass

    def write(self):
        self.job.commit()

    def check_cancelled(self):
        if _state_of(self.job) == "cancelling":
            raise JobCancelled(f"job {self.job.object_id} was cancelled")


def run_job(job, dpu=None):
    """Run ``job`` now, as its owner, and record how it ended; the context must be the
    job owner's (`JobRunner` sees to it). Failures are recorded, not raised.

    Parameters
    ----------
    job : `Job`
    dpu : DPU, optional
        Where products are made (default: a `SerialDPU`); its progress goes to the job.
    """
    progress = _JobProgress(job)
    job.state, job.started, job.error, job.failed_target = "running", _now(), "", ""
    job.note("started")
    job.commit()
    try:
        request = job.processing_request()
        dpu = dpu or SerialDPU()
        if request.target == "Object" and request.only is None:
            dpu.progress = Progress()  # the job counts source lists, not each one's plan
            products = _get_objects(request, dpu, progress)
        else:
            dpu.progress = progress
            plan = request.plan()
            plan.check_inputs()
            dpu.execute(plan)
            products = [root.product for root in plan.roots]
        job.products = products
        job.state = "done"
        job.note(f"done: {len(products)} products up to date")
    except JobCancelled:
        job.state = "cancelled"
        job.note("cancelled on request; what was made is kept")
    except Exception as err:  # recorded for the user: the job page shows it
        job.state = "failed"
        job.error = f"{type(err).__name__}: {err}"
        job.failed_target = getattr(err, "target", "") or ""
        job.note(f"failed: {job.error}")
    job.finished, job.current = _now(), ""
    job.commit()
    return job


def _get_objects(request, dpu, progress):
    """`Object.get` for ``request``, its progress counted in source lists."""
    from .object import Object

    def frames(done, total):
        progress.job.total, progress.job.done = total, done
        progress.job.current = f"source lists {done}/{total}, then the association"
        progress.write()
        progress.check_cancelled()

    return Object.get(ra=request.ra, dec=request.dec, radius=request.radius,
                      pars=request.pars or None, dpu=dpu, progress=frames)


class JobRunner:
    """Runs queued jobs one after another in a thread of its own, each as its owner.

    Parameters
    ----------
    acting_as : callable
        Given a job's `persistence.Context`, a context manager that puts it (and its
        project's process parameters) in force: `awe.environment.acting_as`.
    dpu : DPU, optional
        Where every job's products are made (default: a `SerialDPU`); kept for the
        runner's life, so that a Dask cluster starts once, and closed by `stop`.
    poll : `float`
        Seconds between looks at the queue when it is empty.
    """

    def __init__(self, acting_as, dpu=None, poll=1.0):
        self.acting_as, self.dpu, self.poll = acting_as, dpu or SerialDPU(), poll
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = None

    def start(self):
        """Queue again the jobs a runner left running, then start the thread."""
        self._requeue_interrupted()
        self._thread = threading.Thread(target=self._loop, name="awe-job-runner",
                                        daemon=True)
        self._thread.start()
        return self

    def wake(self):
        """Look at the queue now (a job was submitted)."""
        self._wake.set()

    def stop(self, timeout=None):
        """Stop after the job running now, if any, and close the DPU."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.dpu.close()

    def _requeue_interrupted(self):
        with _all_jobs():
            stale = list(Job.state.is_in(["running", "cancelling"]))
            for job in stale:
                if job.state == "running":
                    job.state = "queued"
                    job.note("queued again: the runner stopped while it was running")
                else:
                    job.state, job.finished = "cancelled", _now()
                    job.note("cancelled: the runner stopped while it was cancelling")
            commit_all(stale)

    def _loop(self):
        while not self._stop.is_set():
            job = self._next()
            if job is None:
                self._wake.wait(self.poll)
                self._wake.clear()
                continue
            owner = Context(user=job.owner, project=job.project,
                            privileges=job.product_privileges)
            with self.acting_as(owner):
                run_job(job, self.dpu)

    def _next(self):
        """The oldest queued job, marked running (under a lock: one runner takes it)."""
        db = current_database()
        with db.named_lock(_QUEUE_LOCK), _all_jobs():
            job = (Job.state == "queued").first()
            if job is not None:
                job.state = "running"
                job.commit()
        return job


def _all_jobs():
    """The runner's own view: every job, whoever owns it."""
    return current_database().acting_as(_RUNNER)


_RUNNER = Context(user="awe-job-runner", everything=True)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
