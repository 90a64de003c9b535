"""DPUs execute plans: make the nodes that need it, each after its dependencies."""

import sys
import tempfile
from pathlib import Path

from persistence import commit_all, current_database

from .errors import MakeError
from .lineage import edges_for
from .plan import UP_TO_DATE, recheck

__all__ = ["Progress", "SerialDPU", "make_node"]


class SerialDPU:
    """Makes a plan's products one after another in this process (the default).

    Parameters
    ----------
    progress : `Progress` or None
        Where progress goes; default a `Progress` line on standard error.
    """

    def __init__(self, progress=None):
        self.progress = progress or Progress()

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
