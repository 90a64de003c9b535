"""DPUs execute plans: make the nodes that need it, each after its dependencies."""

import concurrent.futures
import importlib
import sys
import tempfile
import uuid
import weakref
from pathlib import Path

import networkx as nx

import persistence
from persistence import DBObject, commit_all, current_database

from .dataobject import data_client, set_data_client
from .curation import awaiting_review, awaits_review
from .errors import MakeError, MissingInputError
from .lineage import edges_for
from .plan import UP_TO_DATE, Node, Plan, recheck

__all__ = ["DaskDPU", "Progress", "SerialDPU", "make_node"]


class SerialDPU:
    """Makes a plan's products one after another in this process (the default).

    Parameters
    ----------
    progress : `Progress` or None
        Where progress goes; default a `Progress` line on standard error.
    """

    def __init__(self, progress=None):
        self.progress = progress or Progress()

    def __repr__(self):
        return "SerialDPU()"

    def close(self):
        """Nothing to stop; there so that every DPU closes alike."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def execute(self, plan):
        """Make every node of ``plan`` that needs it; stop at the first failure,
        keeping what finished."""
        todo = plan.to_make()
        self.progress.start(len(todo))
        try:
            for node in todo:
                self.progress.making(node)
                make_node(plan, node)
                self.progress.made(node)
        finally:
            self.progress.finish()


class DaskDPU:
    """Makes a plan's products on Dask: independent branches run in parallel.

    Each product is one task, sent its class, selectors, parameters and the object ids
    of its inputs (never pixels); the worker connects to the same database and data
    store, makes, stores and commits, and returns the new object id. The database is
    the source of truth: an interrupted run resumes by asking again.

    Without an address, a `distributed.LocalCluster` of processes starts as soon as the
    DPU is made, in the background: its workers spawn and import the pipeline while
    this process goes on ingesting or planning. It serves every ``get`` given this DPU
    until `close` (or the end of a ``with`` block, or the DPU is dropped).

    Parameters
    ----------
    address : `str`, optional
        A Dask scheduler address (e.g. of a cluster started with dask-jobqueue on a
        batch system). Without it a local cluster is started, as above.
    n_workers : `int`, optional
        The size of the local cluster (default: one per core).
    progress : `Progress`, optional

    Examples
    --------
    >>> with DaskDPU(n_workers=2) as dpu:  # doctest: +SKIP
    ...     targets.ingest(paths)
    ...     report = targets.NightReport.get(instrument="SIMCAM", night="2024-03-11",
    ...                                      dpu=dpu)
    """

    def __init__(self, address=None, *, n_workers=None, progress=None):
        self.address, self.n_workers = address, n_workers
        self.progress = progress or Progress()
        self._local = None
        if address is None:
            starter = concurrent.futures.ThreadPoolExecutor(1, "awe-dask-start")
            self._local = starter.submit(_local_cluster, n_workers)
            starter.shutdown(wait=False)
            self._finalizer = weakref.finalize(self, _close_local_cluster, self._local)

    def __repr__(self):
        return f"DaskDPU({self.address!r})" if self.address else "DaskDPU(local cluster)"

    def close(self):
        """Stop the local cluster (after its start, if it is still starting)."""
        if self._local is not None:
            self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def execute(self, plan):
        import distributed

        todo = plan.to_make()
        if not todo:
            return
        db = current_database()
        environment = {"database": db.url.render_as_string(hide_password=False),
                       "context": db.context, "data": data_client()}
        if self._local is not None and not self._finalizer.alive:
            raise RuntimeError("this DaskDPU is closed; make a new one")
        scheduler = self.address or self._local.result()
        run = uuid.uuid4().hex[:8]  # keys of its own, apart from any earlier run's
        with distributed.Client(scheduler) as client:
            futures = {}
            for node in todo:
                children = {
                    role: [futures[c] if c.needs_making else c.product.object_id
                           for c in plan.children(node, role)]
                    for role, dep in node.cls.dependencies().items() if dep.is_target}
                futures[node] = client.submit(
                    _make_on_worker, _task(plan, node), environment, children, pure=False,
                    key=f"awe-make-{run}-{len(futures)}-{node.identity}")
            nodes = {future.key: node for node, future in futures.items()}
            self.progress.start(len(todo))
            try:
                for future in distributed.as_completed(list(futures.values())):
                    node = nodes[future.key]
                    try:
                        object_id = future.result()
                    except BaseException:
                        client.cancel(list(futures.values()))
                        raise
                    node.product, node.state = node.cls.load(object_id), UP_TO_DATE
                    self.progress.made(node)
            finally:
                self.progress.finish()


_LOCAL_CLUSTER_CONFIG = {
    # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which switches off glibc's
    # adaptive mmap threshold: every image-sized temporary array is then mapped and
    # unmapped afresh and its pages faulted in again, which made each product 40%
    # slower to make than in the serial DPU. Keep glibc's default.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # Dask's housekeeping is tuned for its interactive dashboard, which the local
    # cluster does not serve: sampling every worker's stack every 10 ms, checking the
    # event loops every 20 ms and memory every 100 ms kept the idle cluster of two
    # workers busy for 16% of a core, taken from the products and the GIL.
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
    # Workers import the pipeline as they start, in the background, rather than when
    # the first product arrives (1-3 s of importing astropy, scipy and sep).
    "distributed.worker.preload": ["targets"],
}
"""How the DPU's own `distributed.LocalCluster` differs from Dask's defaults."""


def _local_cluster(n_workers):
    """A `distributed.LocalCluster` of one-thread worker processes, configured by
    `_LOCAL_CLUSTER_CONFIG` (workers take the configuration in force when they start)."""
    import dask
    import distributed

    with dask.config.set(_LOCAL_CLUSTER_CONFIG):
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                        processes=True, dashboard_address=None)


def _close_local_cluster(starting):
    """Close the cluster ``starting`` (a future) gives, once it has started."""
    try:
        cluster = starting.result()
    except Exception:
        return  # it never started; `execute` reports why
    cluster.close()


def _task(plan, node):
    """What a worker needs to make ``node``: names and object ids, nothing loaded."""
    return {"class": (node.cls.__module__, node.cls.__qualname__),
            "selectors": {k: _reference(v) for k, v in node.selectors.items()},
            "parameters": node.parameters.as_dict(),
            "inputs": {k: _reference(v) for k, v in node.inputs.items()},
            "identity": node.identity,
            "children": {role: [(c.cls.__module__, c.cls.__qualname__)
                                for c in plan.children(node, role)]
                         for role, dep in node.cls.dependencies().items() if dep.is_target}}


def _reference(value):
    if isinstance(value, DBObject):
        return ("object", type(value).__module__, type(value).__qualname__, value.object_id)
    if isinstance(value, list):
        return [_reference(v) for v in value]
    return value


def _dereference(value):
    if isinstance(value, tuple) and len(value) == 4 and value[0] == "object":
        return _class(value[1], value[2]).load(value[3])
    if isinstance(value, list):
        return [_dereference(v) for v in value]
    return value


def _class(module, qualname):
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    return cls


_worker_environment = {}


def _make_on_worker(task, environment, children):
    """The Dask task: connect (once per worker process and database), rebuild the node
    and make it."""
    connection = (environment["database"], environment["context"])
    if _worker_environment.get("connection") != connection:
        persistence.connect(connection[0], context=connection[1])
        _worker_environment["connection"] = connection
    set_data_client(environment["data"])
    cls = _class(*task["class"])
    node = Node(cls, {k: _dereference(v) for k, v in task["selectors"].items()},
                cls.Parameters.in_force(task["parameters"]),
                inputs={k: _dereference(v) for k, v in task["inputs"].items()},
                identity=task["identity"])
    graph = nx.DiGraph()
    graph.add_node(node)
    for role, ids in children.items():
        for i, (object_id, child_class) in enumerate(zip(ids, task["children"][role])):
            child_cls = _class(*child_class)
            child = Node(child_cls, {}, None, state=UP_TO_DATE,
                         product=child_cls.load(object_id), identity=f"{role}{i}")
            graph.add_edge(node, child, role=role, order=(0, i))
    make_node(Plan(graph, node), node)
    return node.product.object_id


class Progress:
    """Products done out of to do, on one line rewritten in place: ``[3/10] made
    MasterBias(chip=ccd50, time=...)``. Silent when there is nothing to make."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.total = self.done = 0

    def start(self, total):
        self.total, self.done = total, 0

    def making(self, node):
        self._show(f"making {node.label()}")

    def made(self, node):
        self.done += 1
        self._show(f"made {node.label()}")

    def finish(self):
        if self.total:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, text):
        if self.total:
            line = f"[{self.done}/{self.total}] {text}"
            self.stream.write(f"\r{line[:120]:<120}")
            self.stream.flush()


def make_node(plan, node):
    """Make, verify, store and commit the product of ``node``, whose dependencies are
    made.

    Raises
    ------
    MakeError
        Raised if ``make()`` or ``verify()`` raised; nothing is stored or committed for
        the node.

    Two processes making the same node take turns on a database lock; the second
    finds the first one's product and makes nothing.
    """
    with current_database().named_lock(f"awe-make:{node.identity}"):
        if recheck(plan, node):
            return  # another process made it while this one waited for the lock
        _make_unlocked(plan, node)


def _make_unlocked(plan, node):
    obj = node.cls.new(node.selectors)
    obj.code_version = node.cls.CODE_VERSION
    obj.process_parameters = node.parameters
    for role, dep in node.cls.dependencies().items():
        if dep.is_target:
            used = [child.product for child in plan.children(node, role)]
            flagged = [awaiting_review(p) for p in used if awaits_review(p)]
            if flagged and not dep.accept_flagged:
                raise MissingInputError(f"cannot make {node.label()}: {'; '.join(flagged)}")
            setattr(obj, role, used if dep.many else used[0])
        else:
            setattr(obj, role, node.inputs[role])
    with tempfile.TemporaryDirectory(prefix="awe-make-") as workdir:
        try:
            path = obj.make(Path(workdir))
            obj.verify(path)
        except Exception as err:
            inputs = ", ".join(f"{role}={_inputs(getattr(obj, role))}"
                               for role in node.cls.dependencies())
            raise MakeError(f"making {node.label()} failed (inputs: {inputs}): "
                            f"{type(err).__name__}: {err}", target=node.label(),
                            original=err) from err
        obj.store(path)
    inputs = {role: getattr(obj, role) for role in node.cls.dependencies()}
    commit_all([obj, *edges_for(obj, inputs)])
    node.product, node.state = obj, UP_TO_DATE


def _inputs(value):
    if isinstance(value, list):
        ids = [str(v.object_id) for v in value[:5]]
        more = f" and {len(value) - 5} more" if len(value) > 5 else ""
        return f"{type(value[0]).__name__ if value else ''} [{', '.join(ids)}{more}]"
    return "none" if value is None else f"{type(value).__name__} {value.object_id}"
