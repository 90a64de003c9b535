"""Lineage: which objects each product was made from, recorded when it is committed.

Every use of an input by a product is a `LineageEdge` row, so "everything upstream of
this coadd" and "everything downstream of this bias" are each one recursive query
(`persistence.reachable`) however large the graph.
"""

import networkx as nx

from persistence import DBObject, persistent, reachable

__all__ = ["Lineage", "LineageEdge", "dependents", "impact", "lineage"]


class LineageEdge(DBObject):
    """One use of an object by a product, in a dependency role."""

    product = persistent("The product", DBObject, None)
    input = persistent("An object it was made from", DBObject, None)
    role = persistent("The dependency role the input was used in", str, "")


def edges_for(product, inputs):
    """The `LineageEdge` objects of a new ``product``; ``inputs`` maps each role to an
    object, a list of objects or None."""
    edges = []
    for role, value in inputs.items():
        for obj in value if isinstance(value, (list, tuple)) else [value]:
            if obj is not None:
                edges.append(LineageEdge(product=product, input=obj, role=role))
    return edges


class Lineage:
    """The upstream graph of a product, down to the raw data: a `networkx.DiGraph` from
    each product to its inputs (edge attribute ``role``). ``str()`` tells everything:
    every node with its process parameters and code version."""

    def __init__(self, root, graph):
        self.root, self.graph = root, graph

    def __len__(self):
        return self.graph.number_of_nodes()

    def __iter__(self):
        return iter(self.graph)

    def __str__(self):
        lines = []
        self._render(self.root, "", "", lines, set())
        return "\n".join(lines)

    def _render(self, obj, role, indent, lines, seen):
        line = f"{indent}{role + ': ' if role else ''}{type(obj).__name__} {obj.object_id}"
        if obj in seen:
            lines.append(line + " (see above)")
            return
        seen.add(obj)
        details = []
        if getattr(obj, "code_version", None):
            details.append(f"code version {obj.code_version}")
        pars = getattr(obj, "process_parameters", None)
        if pars is not None and pars.as_dict():
            details.append(", ".join(f"{k}={v!r}" for k, v in pars.as_dict().items()))
        if getattr(obj, "filename", None):
            details.append(obj.filename)
        lines.append(line + (f" [{'; '.join(details)}]" if details else ""))
        for _, child, data in sorted(self.graph.out_edges(obj, data=True),
                                     key=lambda e: (e[2]["role"], e[1].object_id)):
            self._render(child, data["role"], indent + "  ", lines, seen)


def lineage(obj):
    """Return the `Lineage` of ``obj``: everything it was made from, recursively."""
    graph = nx.DiGraph()
    graph.add_node(obj)
    for edge in reachable(LineageEdge, [obj], source="product", target="input"):
        graph.add_edge(edge.product, edge.input, role=edge.role)
    return Lineage(obj, graph)


def dependents(obj):
    """Return every product that used ``obj``, directly or indirectly, oldest first."""
    edges = reachable(LineageEdge, [obj], source="input", target="product")
    return sorted({edge.product for edge in edges}, key=lambda p: p.object_id)


def impact(obj):
    """Return the valid products that would become outdated if ``obj`` were invalidated:
    its dependents, except those already invalid."""
    return [p for p in dependents(obj) if getattr(p, "is_valid", 1) != 0]
