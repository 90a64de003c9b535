"""Planning: which products exist and are up to date, which are outdated and why, and
what must be made. `ProcessTarget.plan` and `ProcessTarget.get` start here."""

import dataclasses
import datetime
import json

import networkx as nx

from persistence import DBObject, collector_paused, current_database, fetch_together

from .curation import awaiting_review, awaits_review
from .errors import MissingInputError
from .process import describe

__all__ = ["MISSING_INPUT", "NOT_CHECKED", "OUTDATED", "TO_BE_BUILT", "UP_TO_DATE",
           "Node", "Plan", "make_plan", "plan_targets", "target_from_spec", "target_spec"]

UP_TO_DATE = "up to date"
OUTDATED = "outdated"
TO_BE_BUILT = "to be built"
MISSING_INPUT = "missing input"
NOT_CHECKED = "not checked"


@dataclasses.dataclass(eq=False)
class Node:
    """One target in a plan: its class and selectors, and what planning found."""

    cls: type
    selectors: dict
    parameters: object
    """The `ProcessParameters` in force."""
    state: str = NOT_CHECKED
    reasons: list = dataclasses.field(default_factory=list)
    """Why the node is outdated, or what input is missing."""
    product: DBObject = None
    """The existing product (up to date, outdated or not checked), or the one made."""
    inputs: dict = dataclasses.field(default_factory=dict)
    """Selected inputs that are not targets, by role: an object or a list."""
    identity: str = ""
    """The class, selectors and parameters, as a string: equal for equal requests."""

    @property
    def needs_making(self):
        return self.state in (OUTDATED, TO_BE_BUILT)

    def label(self):
        """``MasterBias(chip=ccd50, time=2024-03-17T01:02:03)``."""
        return f"{self.cls.__name__}({', '.join(f'{k}={_show(v)}' for k, v in self.selectors.items())})"


class Plan:
    """The dependency graph of a request: a `networkx.DiGraph` whose nodes are `Node`
    objects and whose edges go from a target to each dependency, with its ``role``.

    ``str(plan)`` is a readable tree; `to_json` is the form for the web page.
    """

    def __init__(self, graph, root, roots=None):
        self.graph, self.root = graph, root
        self.roots = list(roots) if roots is not None else [root]
        """The targets asked for: the root alone, unless `plan_targets` planned several."""

    def __iter__(self):
        return iter(self.graph)

    def children(self, node, role):
        """The dependency nodes of ``node`` in ``role``, in their declared order."""
        return _children(self.graph, node, role)

    def to_make(self):
        """The nodes to make, each after its dependencies."""
        return [node for node in reversed(list(nx.topological_sort(self.graph)))
                if node.needs_making]

    def check_inputs(self):
        """Raise `MissingInputError` naming every missing input, if any."""
        missing = []
        for node in self.graph:
            if node.state == MISSING_INPUT:
                below = {f"{c.label()} lacks input" for c in self.graph.successors(node)}
                own = [reason for reason in node.reasons if reason not in below]
                if own:
                    missing.append(f"{node.label()}: {', '.join(own)}")
        if missing:
            raise MissingInputError(f"cannot make {self.root.label()}: {'; '.join(missing)}")

    def product(self):
        """The product the request is for (after `get`, the up-to-date one)."""
        return self.root.product

    def __str__(self):
        lines, seen = [], set()
        for root in self.roots:
            self._render(root, "", "", lines, seen)
        return "\n".join(lines)

    def _render(self, node, role, indent, lines, seen):
        oid = f" #{node.product.object_id}" if node.product is not None else ""
        lines.append(f"{indent}{role + ': ' if role else ''}{node.label()} [{node.state}]{oid}")
        if node in seen:
            if any(True for _ in self.graph.successors(node)):
                lines[-1] += " (see above)"
            return
        seen.add(node)
        for reason in node.reasons:
            lines.append(f"{indent}  - {reason}")
        for role_name, value in node.inputs.items():
            items = value if isinstance(value, list) else [value]
            lines.append(f"{indent}  {role_name}: {len(items)} "
                         f"{items[0].__class__.__name__ if items else 'none'}")
        for _, child, data in sorted(self.graph.out_edges(node, data=True),
                                     key=lambda e: e[2]["order"]):
            self._render(child, data["role"], indent + "  ", lines, seen)

    def to_json(self):
        """The plan as JSON-ready data: ``{"root": id, "nodes": [...], "edges": [...]}``."""
        ids = {node: i for i, node in enumerate(self.graph)}
        return {
            "root": ids[self.root],
            "roots": [ids[root] for root in self.roots],
            "nodes": [{"id": ids[n], "class": n.cls.__name__,
                       "selectors": {k: _show(v) for k, v in n.selectors.items()},
                       "state": n.state, "reasons": list(n.reasons),
                       "target": target_spec(n.cls, n.selectors),
                       "object_id": n.product.object_id if n.product is not None else None}
                      for n in self.graph],
            "edges": [{"from": ids[a], "to": ids[b], "role": d["role"]}
                      for a, b, d in self.graph.edges(data=True)],
        }

    def __repr__(self):
        counts = {}
        for node in self.graph:
            counts[node.state] = counts.get(node.state, 0) + 1
        return f"<Plan {self.root.label()}: {json.dumps(counts)}>"


def make_plan(cls, selectors, *, pars=None, depth=None):
    """Plan ``cls`` for ``selectors``: see `ProcessTarget.plan`."""
    return plan_targets([(cls, selectors)], pars=pars, depth=depth)


def plan_targets(requested, *, pars=None, depth=None):
    """Plan several targets at once: ``requested`` is a list of ``(cls, selectors)``
    (selectors checked), ``pars`` applies to each of them. Targets they share (the
    calibrations of a night, say) are one node; `Plan.roots` are the requested ones.

    The graph is expanded level by level; each level asks the database once per class
    and dependency role, and the candidates of all nodes of a class come from one
    query, so the number of statements depends on the shape of the request (how many
    classes and levels), not on its size. Everything made while planning survives as
    the plan, so the cyclic garbage collector, which would only traverse it again and
    again, is paused; every question is asked on one connection and sees the same state
    of the database.
    """
    if not requested:
        raise ValueError("nothing to plan: no targets were asked for")
    with collector_paused(), current_database().reading():
        planner = _Planner(depth)
        roots = planner.expand([(cls, selectors, pars) for cls, selectors in requested])
        planner.find_candidates()
        for node in reversed(list(nx.topological_sort(planner.graph))):
            planner.judge(node)
    return Plan(planner.graph, roots[0], roots)


def recheck(plan, node):
    """Judge ``node`` again, its dependencies now being up to date; True if a product
    that is up to date exists (made meanwhile by another process)."""
    node.reasons, node.state, node.product = [], NOT_CHECKED, None
    planner = _Planner(None, plan.graph)
    planner.candidates[node] = list(node.cls.candidates(node.selectors))
    planner.judge(node)
    return node.state == UP_TO_DATE


class _Planner:
    def __init__(self, depth, graph=None):
        self.depth = depth
        self.graph = nx.DiGraph() if graph is None else graph
        self.nodes = {}
        self.level = {}
        self.candidates = {}

    def expand(self, requested):
        """Add the nodes of the requested ``(cls, selectors, pars)``, all together level
        by level (each level's inputs are selected with one statement per class and
        role, whatever the number of targets); return the roots, without repeats."""
        roots = list(dict.fromkeys(self._node(cls, selectors, pars, 0)[0]
                                   for cls, selectors, pars in requested))
        frontier = list(roots)
        while frontier:
            upcoming = []
            for cls, nodes in _by_class(n for n in frontier if not self._beyond(n)).items():
                for order, (role, dep) in enumerate(cls.dependencies().items()):
                    if not dep.is_target:
                        self._select_inputs(nodes, role, dep)
                        continue
                    for node in nodes:
                        wanted = dep.child_selectors(node.selectors)
                        for i, child_selectors in enumerate(wanted if dep.many else [wanted]):
                            child, new = self._node(dep.type, child_selectors, None,
                                                    self.level[node] + 1)
                            self.graph.add_edge(node, child, role=role, order=(order, i))
                            if new:
                                upcoming.append(child)
            frontier = upcoming
        return roots

    def _node(self, cls, selectors, pars, level):
        key = (cls, _key(cls.identity(selectors)), _key(pars or {}))
        if key in self.nodes:
            return self.nodes[key], False
        node = Node(cls, dict(selectors), cls.parameters_in_force(pars),
                    identity=f"{cls.__name__}{key[1]}{key[2]}")
        self.nodes[key], self.level[node] = node, level
        self.graph.add_node(node)
        return node, True

    def _beyond(self, node):
        return self.depth is not None and self.level.get(node, 0) > self.depth

    def _select_inputs(self, nodes, role, dep):
        """Select the inputs in ``role`` of all ``nodes`` (of one class) together."""
        queries = [dep.query(node.selectors) for node in nodes]
        for node, query, found in zip(nodes, queries, fetch_together(queries)):
            if not found and not dep.optional:
                node.reasons.append(f"no {dep.type.__name__} for {role}: looked for {query}")
            node.inputs[role] = found if dep.many else (found[-1] if found else None)

    def find_candidates(self):
        """The existing products of every node, newest first, one query per class."""
        for cls, nodes in _by_class(self.graph).items():
            queries = [cls.candidates(node.selectors) for node in nodes]
            for node, found in zip(nodes, fetch_together(queries)):
                self.candidates[node] = sorted(found, key=lambda c: -c.object_id)

    def judge(self, node):
        """Set the state of ``node``, whose dependencies are judged."""
        wanted = node.parameters.as_dict()
        # Newest first, but one flagged by verify() that no person judged yet only if
        # there is nothing else (making another would only be flagged again).
        compatible = sorted((c for c in self.candidates[node] if _parameters(c) == wanted),
                            key=awaits_review)
        if self._beyond(node):
            node.product = compatible[0] if compatible else None
            return
        missing_below = [c for c in self.graph.successors(node) if c.state == MISSING_INPUT]
        if node.reasons or missing_below:
            node.state = MISSING_INPUT
            node.reasons += [f"{c.label()} lacks input" for c in missing_below]
            return
        flagged = self._flagged_inputs(node)
        if flagged:
            node.state = MISSING_INPUT
            node.reasons += flagged
            return
        candidates = self.candidates[node]
        if not candidates:
            node.state = TO_BE_BUILT
            return
        if not compatible:
            node.product = candidates[0]
            node.state = OUTDATED
            node.reasons.append(f"{describe(candidates[0])} was made with other process "
                                f"parameters: {_differences(_parameters(candidates[0]), wanted)}")
            return
        # The newest product that is up to date wins (an older one can be, when a
        # newer calibration it did not use was invalidated); else the newest is outdated.
        for product in compatible:
            reasons = self._staleness(node, product)
            if not reasons:
                node.product, node.state = product, UP_TO_DATE
                return
            if product is compatible[0]:
                newest_reasons = reasons
        node.product, node.state = compatible[0], OUTDATED
        node.reasons += newest_reasons

    def _flagged_inputs(self, node):
        """Why the inputs of ``node`` that verify() flagged and no person judged yet
        cannot be used (unless its dependency accepts flagged inputs)."""
        return [awaiting_review(child.product)
                for role, dep in node.cls.dependencies().items()
                if dep.is_target and not dep.accept_flagged
                for child in _children(self.graph, node, role)
                if child.product is not None and awaits_review(child.product)]

    def _staleness(self, node, product):
        """Every reason ``product`` is outdated for ``node`` (none if up to date)."""
        cls = node.cls
        reasons = []
        if product.code_version != cls.CODE_VERSION:
            reasons.append(f"{describe(product)} was made by code version "
                           f"{product.code_version!r}; {cls.__name__} is now at "
                           f"{cls.CODE_VERSION!r}")
        for role, dep in cls.dependencies().items():
            if dep.many:
                used = [obj.object_id for obj in getattr(product, role)]
            else:  # the id is enough: the object is loaded only to explain a change
                used = [] if product.reference_id(role) is None else [product.reference_id(role)]
            if dep.is_target:
                reasons += _target_changes(product, role, used,
                                           _children(self.graph, node, role))
            else:
                now = node.inputs[role]
                now = now if dep.many else ([now] if now is not None else [])
                reasons += _input_changes(role, used, now, dep.type.__name__)
        return reasons


def _by_class(nodes):
    groups = {}
    for node in nodes:
        groups.setdefault(node.cls, []).append(node)
    return groups


def _children(graph, node, role):
    return [child for _, child, data in sorted(graph.out_edges(node, data=True),
                                                key=lambda e: e[2]["order"])
            if data["role"] == role]


def _target_changes(product, role, used, children):
    """Why the targets ``product`` used in ``role`` (their ids) are not the ones
    that would be used now."""
    reasons = []
    if len(used) != len(children):
        return [f"{role}: it used {len(used)}, now {len(children)} would be used"]
    for i, (old_id, child) in enumerate(zip(used, children)):
        if child.needs_making:
            verb = "is outdated" if child.state == OUTDATED else "is to be made"
            old = _used(product, role, i)
            was = (f" ({describe(old)}, which it used, was invalidated)"
                   if old_id != getattr(child.product, "object_id", None)
                   and old.is_valid == 0 else "")
            reasons.append(f"{role}: {child.label()} {verb}{was}")
        elif child.product is not None and old_id != child.product.object_id:
            old = _used(product, role, i)
            why = (f"{describe(old)} was invalidated" if old.is_valid == 0
                   else f"newer, valid, covers {_covers(child)}")
            reasons.append(f"{role}: {describe(child.product)} now supersedes {old_id} ({why})")
    return reasons


def _used(product, role, i):
    """The ``i``-th object ``product`` used in ``role`` (loaded with its neighbours')."""
    used = getattr(product, role)
    return used[i] if isinstance(used, (list, tuple)) else used


def _input_changes(role, used_ids, now, name):
    """Why the inputs used in ``role`` (their ids) differ from those selected now
    (objects of class ``name``)."""
    used_ids = set(used_ids)
    now_ids = {o.object_id for o in now}
    if used_ids == now_ids:
        return []
    parts = []
    if now_ids - used_ids:
        parts.append(f"added {name} {', '.join(map(str, sorted(now_ids - used_ids)))}")
    if used_ids - now_ids:
        parts.append(f"removed {name} {', '.join(map(str, sorted(used_ids - now_ids)))}")
    return [f"{role} changed: {'; '.join(parts)}"]


def _parameters(product):
    pars = product.process_parameters
    return pars.as_dict() if pars is not None else {}


def _differences(old, new):
    return ", ".join(f"{k} {old.get(k)!r} → {new.get(k)!r}"
                     for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))


def _covers(node):
    time = node.selectors.get("time")
    return _show(time) if time is not None else ", ".join(
        f"{k}={_show(v)}" for k, v in node.selectors.items())


def _key(selectors):
    return tuple(sorted((k, v.object_id if isinstance(v, DBObject) else v)
                        for k, v in selectors.items()))


def _show(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, DBObject):
        return getattr(value, "name", None) or describe(value)
    return str(value)


def target_spec(cls, selectors):
    """A target as JSON-ready data, ``{"class": "MasterBias", "selectors": {"chip":
    {"id": 12}, "time": {"time": "2024-03-11T20:00:00"}}}``: how a web page names a
    node to make and a job records what it was asked for. `target_from_spec` reverses it."""
    return {"class": cls.__name__,
            "selectors": {name: _spec_value(value) for name, value in selectors.items()}}


def target_from_spec(spec):
    """``(cls, selectors)`` from a `target_spec`, the objects loaded by id.

    Raises
    ------
    ValueError
        Raised if the spec names no target class, an object that does not exist (or
        that the context's user may not see), or is malformed.
    """
    from persistence import ObjectNotFoundError, QueryError, registered_class

    from .process import ProcessTarget

    try:
        cls = registered_class(str(spec["class"]))
        raw = dict(spec.get("selectors") or {})
    except (KeyError, TypeError, ValueError, QueryError) as err:
        raise ValueError(f"{spec!r:.200} is not a target: give its class and selectors "
                         f"({err})") from None
    if not (isinstance(cls, type) and issubclass(cls, ProcessTarget)):
        raise ValueError(f"{cls.__name__} is not a target that can be made")
    selectors = {}
    for name, value in raw.items():
        try:
            if isinstance(value, dict) and set(value) == {"id"}:
                object_id = int(value["id"])
                if not 0 < object_id < 2 ** 63:
                    raise ValueError(f"{object_id} is not an object id")
                selectors[name] = DBObject.load(object_id)
            elif isinstance(value, dict) and set(value) == {"time"}:
                selectors[name] = datetime.datetime.fromisoformat(str(value["time"]))
            elif value is None or isinstance(value, (str, int, float, bool)):
                selectors[name] = value
            else:
                raise ValueError(f"{value!r:.80} is not a selector value")
        except (ObjectNotFoundError, ValueError, TypeError) as err:
            raise ValueError(f"{cls.__name__} selector {name}: {err}") from None
    try:
        selectors = cls.check_selectors(selectors)
        properties = cls.get_persistent_properties()
        for name, value in selectors.items():
            if name in properties:
                selectors[name] = properties[name].validate(value)
            elif name == "time" and not isinstance(value, datetime.datetime):
                raise TypeError(f"{cls.__name__} selector time must be a date-time, "
                                f"e.g. {{'time': '2024-03-11T20:00:00'}}, not {value!r:.40}")
    except TypeError as err:  # wrong selectors, or a value of the wrong type
        raise ValueError(str(err)) from None
    return cls, selectors


def _spec_value(value):
    if isinstance(value, DBObject):
        return {"id": value.object_id}
    if isinstance(value, datetime.datetime):
        return {"time": value.isoformat()}
    return value
