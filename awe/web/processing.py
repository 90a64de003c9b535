"""Target processing on the web: the form, the plan tree, jobs and their queue; the
log-in and the context switch; and their JSON API."""

import json
from typing import Literal, Optional

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

import persistence
import targets
from targets import plan as plan_states
from targets.jobs import Job, cancel_job, submit_job
from targets.request import REQUESTABLE, ProcessingRequest

from .accounts import check_password
from .session import Viewer, login, logout, require_csrf, switch_context, viewer

__all__ = ["plan_view", "router"]

router = APIRouter()

STATES = (plan_states.UP_TO_DATE, plan_states.OUTDATED, plan_states.TO_BE_BUILT,
          plan_states.MISSING_INPUT, plan_states.NOT_CHECKED)
"""The states of a plan's nodes, in the order the page counts them."""


def render(request, name, viewer_, **values):
    from .app import templates

    return templates.TemplateResponse(request, name, {"viewer": viewer_, **values})


def _db():
    return persistence.current_database()


# -- the API's shapes -------------------------------------------------------------------

class RequestIn(BaseModel):
    """A processing request (see `targets.ProcessingRequest`)."""

    model_config = ConfigDict(extra="forbid")
    target: Literal[tuple(REQUESTABLE)] = Field(description="The class to make")
    instrument: str = Field("", max_length=100)
    chip: str = Field("", max_length=100, description="Chip name; empty: every chip")
    filter: str = Field("", max_length=20)
    first_night: str = Field("", max_length=10, description="YYYY-MM-DD, local date at "
                                                            "the night's start")
    last_night: str = Field("", max_length=10)
    ra: Optional[float] = Field(None, ge=0, lt=360, description="degrees")
    dec: Optional[float] = Field(None, ge=-90, le=90, description="degrees")
    radius: Optional[float] = Field(None, gt=0, le=10, description="degrees")
    pars: dict[str, float | int | bool | str] = Field(
        default_factory=dict, description="Process parameters overriding those in force")
    depth: Optional[int] = Field(None, ge=0, le=100)
    only: Optional[list[dict]] = Field(None, max_length=5000,
                                       description="Target specs of the plan nodes to get")

    def request(self):
        return ProcessingRequest(**self.model_dump())


class ContextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: Optional[str] = Field(None, max_length=100)
    privileges: Optional[int] = Field(None, ge=1, le=4)


class ContextOut(BaseModel):
    user: Optional[str]
    project: str
    role: Optional[str]
    privileges: int
    projects: dict[str, str]
    csrf_token: str


class NodeOut(BaseModel):
    id: int
    class_: str = Field(alias="class")
    selectors: dict[str, str]
    state: str
    reasons: list[str]
    object_id: Optional[int]
    target: dict


class EdgeOut(BaseModel):
    from_: int = Field(alias="from")
    to: int
    role: str


class PlanOut(BaseModel):
    counts: dict[str, int]
    root: int
    roots: list[int]
    nodes: list[NodeOut]
    edges: list[EdgeOut]


class JobOut(BaseModel):
    object_id: int
    owner: str
    project: str
    label: str
    state: str
    done: int
    total: int
    current: str
    created: str
    started: Optional[str]
    finished: Optional[str]
    error: str
    failed_target: str
    products: list[int]
    log: str


class ParameterOut(BaseModel):
    name: str
    type: str
    default: object
    in_force: object
    doc: str


class TargetOut(BaseModel):
    name: str
    doc: str
    selections: list[str]
    parameters: list[ParameterOut]


# -- log-in and context --------------------------------------------------------------

@router.get("/", include_in_schema=False)
def index(request: Request, who: Viewer = Depends(viewer)):
    recent = list(targets.ProcessTarget.all().order_by("object_id", descending=True)[:10])
    return render(request, "index.html", who, recent=recent)


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/", who: Viewer = Depends(viewer)):
    return render(request, "login.html", who, next=_local(next), error=None, username="")


@router.post("/login", include_in_schema=False, dependencies=[Depends(require_csrf)])
def login_form(request: Request, username: str = Form(..., max_length=100),
               password: str = Form(..., max_length=1000), next: str = Form("/")):
    db = _db()
    if not check_password(db, username, password):
        return render(request, "login.html", Viewer(request), next=_local(next),
                      username=username, error="wrong user name or password")
    login(request, db, username)
    return RedirectResponse(_local(next), status_code=303)


@router.post("/logout", include_in_schema=False, dependencies=[Depends(require_csrf)])
def logout_form(request: Request):
    logout(request)
    return RedirectResponse("/", status_code=303)


@router.post("/context", include_in_schema=False, dependencies=[Depends(require_csrf)])
def context_form(request: Request, project: str = Form(None, max_length=100),
                 privileges: int = Form(None, ge=1, le=4),
                 who: Viewer = Depends(viewer)):
    who.require_login()
    project = project if project != who.project else None
    switch_context(request, _db(), project=project,
                   privileges=None if project is not None else privileges)
    return RedirectResponse(_local(request.headers.get("referer", "/"), request), 303)


@router.get("/api/context", response_model=ContextOut, tags=["context"])
def get_context(who: Viewer = Depends(viewer)):
    """Who the session is: user, project and role, privileges of new products, the
    user's projects, and the CSRF token that calls changing something must send."""
    return _context_out(who)


@router.post("/api/context", response_model=ContextOut, tags=["context"],
             dependencies=[Depends(require_csrf)])
def set_context(request: Request, change: ContextIn, who: Viewer = Depends(viewer)):
    """Switch the session's project or privileges (within the user's roles)."""
    who.require_login()
    context = switch_context(request, _db(), project=change.project,
                             privileges=change.privileges)
    with _db().acting_as(context):
        return _context_out(Viewer(request))


def _context_out(who):
    return ContextOut(user=who.user, project=who.project, role=who.role,
                      privileges=who.privileges, projects=who.projects,
                      csrf_token=who.csrf)


def _local(url, request=None):
    """``url`` if it is a path on this site (no open redirects), else ``/``."""
    if request is not None and url.startswith(str(request.base_url)):
        url = "/" + url[len(str(request.base_url)):]
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url \
        else "/"


# -- the form and the plan -----------------------------------------------------------

def target_classes():
    """What the form offers: every requestable class, with its selections and process
    parameters (defaults, those in force for the project, and their docs)."""
    found = []
    for name, selections in REQUESTABLE.items():
        cls = persistence.registered_class(name)
        if issubclass(cls, targets.ProcessTarget):
            in_force = cls.parameters_in_force().as_dict()
        else:  # Object: the association's parameters
            in_force = cls.Parameters.in_force(targets.process.project_parameters(name)).as_dict()
        properties = cls.Parameters.get_persistent_properties()
        parameters = [{"name": p, "type": properties[p].type_name(),
                       "default": properties[p].default, "in_force": in_force[p],
                       "doc": properties[p].doc} for p in cls.Parameters.names()]
        found.append({"name": name, "doc": (cls.__doc__ or "").split("\n\n")[0].strip(),
                      "selections": list(selections), "parameters": parameters})
    return found


def _choices():
    """The instruments, chips and filters of the raw data the user may see."""
    chips = targets.Chip.all().columns("instrument", "name")
    frames = targets.RawFrame.all().columns("filter")
    return {"instruments": sorted(set(chips["instrument"].tolist())),
            "chips": sorted(set(chips["name"].tolist())),
            "filters": sorted(f for f in set(frames["filter"].tolist()) if f)}


def state_counts(nodes):
    """How many of a plan's nodes (`targets.Plan.to_json`'s) are in each state."""
    counts = {state: 0 for state in STATES}
    for node in nodes:
        counts[node["state"]] += 1
    return counts


def plan_view(plan):
    """The plan as the page draws it: ``(counts, roots)``, each root a nested dict
    with its children by role; a node met again is drawn once, then referred to."""
    data = plan.to_json()
    ids = {node: i for i, node in enumerate(plan.graph)}
    nodes = {n["id"]: n for n in data["nodes"]}
    counts = state_counts(data["nodes"])
    seen = set()

    def tree(node, role):
        item = dict(nodes[ids[node]], role=role, label=node.label(),
                    spec=json.dumps(nodes[ids[node]]["target"]), repeat=node in seen,
                    needs_making=node.needs_making, children=[])
        if node in seen:
            return item
        seen.add(node)
        for _, child, edge in sorted(plan.graph.out_edges(node, data=True),
                                     key=lambda e: e[2]["order"]):
            item["children"].append(tree(child, edge["role"]))
        return item

    return counts, [tree(root, "") for root in plan.roots]


def _form_request(form):
    """A `ProcessingRequest` from the form's fields, checked like the API's."""
    number = lambda name: float(form[name]) if form.get(name, "").strip() else None  # noqa: E731
    target = form.get("target", "")
    pars = {}
    for key, value in form.items():
        if key.startswith(f"par.{target}.") and value.strip():
            pars[key.split(".", 2)[2]] = _literal(value.strip())
    only = [json.loads(spec) for spec in form.getlist("only")] if "only" in form else None
    try:
        values = dict(target=target, instrument=form.get("instrument", ""),
                      chip=form.get("chip", ""), filter=form.get("filter", ""),
                      first_night=form.get("first_night", ""),
                      last_night=form.get("last_night", ""),
                      ra=number("ra"), dec=number("dec"), radius=number("radius"),
                      pars=pars, only=only,
                      depth=int(form["depth"]) if form.get("depth", "").strip() else None)
        return RequestIn(**values).request()
    except (ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"the form does not make a request: {err}") from None


def _literal(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


@router.get("/process", include_in_schema=False)
def process_page(request: Request, who: Viewer = Depends(viewer)):
    return render(request, "process.html", who, classes=target_classes(),
                  choices=_choices(), form={}, counts=None, roots=None, states=STATES)


@router.post("/process", include_in_schema=False, dependencies=[Depends(require_csrf)])
async def process_form(request: Request):
    form = await request.form()
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_process_form, request, form)


def _process_form(request, form):
    project = form.get("project")
    if project and project != persistence.current_database().context.project:
        context = switch_context(request, _db(), project=project)  # the form's project
        with _db().acting_as(context):
            return _process_form(request, form)
    who = Viewer(request)
    page = dict(classes=target_classes(), choices=_choices(), form=form, states=STATES,
                counts=None, roots=None)
    try:
        processing_request = _form_request(form)
        if form.get("action") in ("process", "process-ticked"):
            who.require_login()
            if form.get("action") == "process" and processing_request.only is not None:
                processing_request.only = None  # the whole tree
            job = submit_job(processing_request)
            _wake_runner(request)
            return RedirectResponse(f"/jobs?submitted={job.object_id}", status_code=303)
        plan = processing_request.plan()
    except (ValueError, LookupError, PermissionError) as err:
        return render(request, "process.html", who, error=" ".join(str(err).split()),
                      **page)
    page["counts"], page["roots"] = plan_view(plan)
    return render(request, "process.html", who, **page)


@router.get("/api/targets", response_model=list[TargetOut], tags=["processing"])
def list_targets():
    """The classes a request can ask for, their selections and process parameters."""
    return target_classes()


@router.post("/api/plan", response_model=PlanOut, tags=["processing"],
             dependencies=[Depends(require_csrf)])
def plan_request(body: RequestIn):
    """The plan of a request, without making anything: every node's state and
    reasons, with counts per state."""
    plan = body.request().plan()
    data = plan.to_json()
    data["counts"] = state_counts(data["nodes"])
    return data


# -- jobs ------------------------------------------------------------------------------

JOB_ID = Path(ge=1, lt=2 ** 63, description="The job's object id")

def _jobs(who):
    """The jobs the user sees on the queue: their own, and a manager's project's."""
    if not who.logged_in:
        return []
    query = Job.owner == who.user
    if who.is_manager():
        query = query | (Job.project == who.project)
    return list(query.order_by("object_id", descending=True)[:200])


def _job(job_id, who):
    who.require_login()
    try:
        job = Job.load(job_id)
    except persistence.ObjectNotFoundError:
        raise HTTPException(404, f"no job {job_id} that {who.user} may see") from None
    if job.owner != who.user and not (who.projects.get(job.project) == "manager"):
        raise HTTPException(404, f"no job {job_id} that {who.user} may see")
    return job


def _wake_runner(request):
    if request.app.state.runner is not None:
        request.app.state.runner.wake()


def job_out(job):
    when = lambda t: t.isoformat(sep=" ", timespec="seconds") if t else None  # noqa: E731
    return JobOut(object_id=job.object_id, owner=job.owner, project=job.project,
                  label=job.label, state=job.state, done=job.done, total=job.total,
                  current=job.current, created=when(job.creation_date),
                  started=when(job.started), finished=when(job.finished),
                  error=job.error, failed_target=job.failed_target,
                  products=[p.object_id for p in job.products], log=job.log)


@router.get("/jobs", include_in_schema=False)
def jobs_page(request: Request, submitted: int = None, who: Viewer = Depends(viewer)):
    who.require_login()
    return render(request, "jobs.html", who, jobs=[job_out(j) for j in _jobs(who)],
                  submitted=submitted)


@router.get("/jobs/{job_id}", include_in_schema=False)
def job_page(request: Request, job_id: int = JOB_ID,
             who: Viewer = Depends(viewer)):
    job = _job(job_id, who)
    return render(request, "job.html", who, job=job_out(job),
                  products=[targets.process.describe(p) for p in job.products])


@router.post("/jobs/{job_id}/cancel", include_in_schema=False,
             dependencies=[Depends(require_csrf)])
def cancel_form(job_id: int = JOB_ID, who: Viewer = Depends(viewer)):
    cancel_job(_job(job_id, who))
    return RedirectResponse("/jobs", status_code=303)


@router.get("/api/jobs", response_model=list[JobOut], tags=["jobs"])
def list_jobs(who: Viewer = Depends(viewer)):
    """The user's jobs, newest first (a manager sees the project's)."""
    who.require_login()
    return [job_out(j) for j in _jobs(who)]


@router.post("/api/jobs", response_model=JobOut, status_code=201, tags=["jobs"],
             dependencies=[Depends(require_csrf)])
def submit(request: Request, body: RequestIn, who: Viewer = Depends(viewer)):
    """Queue a request as a job (its targets are checked first)."""
    who.require_login()
    processing_request = body.request()
    processing_request.targets()  # a selection that finds nothing fails now, not later
    job = submit_job(processing_request)
    _wake_runner(request)
    return job_out(job)


@router.get("/api/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
def get_job(job_id: int = JOB_ID, who: Viewer = Depends(viewer)):
    """One job: its state, progress, log, products and error."""
    return job_out(_job(job_id, who))


@router.post("/api/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"],
             dependencies=[Depends(require_csrf)])
def cancel(job_id: int = JOB_ID, who: Viewer = Depends(viewer)):
    """Cancel a job: at once if queued, after the product it is making if running."""
    job = _job(job_id, who)
    cancel_job(job)
    return job_out(job)
