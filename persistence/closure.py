"""Following chains of edges in one recursive query.

An edge class is a persistent class with two references, e.g. a product and an input
it used. `reachable` finds every edge reachable from some objects by following those
references, in one ``WITH RECURSIVE`` statement on SQLite and PostgreSQL alike, however
long the chains are.
"""

import sqlalchemy as sa

from .attribute import REFERENCE
from .errors import QueryError
from .query import Query

__all__ = ["reachable"]


def reachable(edge_class, start, *, source, target):
    """Return a `Query` for the edges reachable from ``start``.

    An edge is reachable if its ``source`` reference is one of ``start`` or the
    ``target`` of a reachable edge.

    Parameters
    ----------
    edge_class : `type`
        A `DBObject` subclass with references named ``source`` and ``target``.
    start : iterable of `DBObject` or `int`
        Committed objects (or their ids) to start from.
    source, target : `str`
        The names of the references to follow, from ``source`` to ``target``.

    Examples
    --------
    >>> upstream = reachable(LineageEdge, [coadd], source="product", target="input")
    >>> downstream = reachable(LineageEdge, [bias], source="input", target="product")
    """
    properties = edge_class.get_persistent_properties()
    for name in (source, target):
        if name not in properties or properties[name].kind != REFERENCE:
            raise QueryError(f"{edge_class.__name__}.{name} is not a reference to follow")
    ids = [obj if isinstance(obj, int) else obj.object_id for obj in start]
    if any(i is None for i in ids):
        raise QueryError("reachable() starts from committed objects; commit them first")
    table = properties[source].owner._table
    walk = (sa.select(table.c.object_id, table.c[target].label("reached"))
            .where(table.c[source].in_(ids)).cte("walk", recursive=True))
    walk = walk.union(sa.select(table.c.object_id, table.c[target])
                      .join(walk, table.c[source] == walk.c.reached))
    return Query(edge_class, _InWalk(walk))


class _InWalk:
    """The condition 'the object is one of the walk's edges'."""

    def __init__(self, walk):
        self.walk = walk

    def clause(self):
        from .dbobject import DBObject

        return DBObject._table.c.object_id.in_(sa.select(self.walk.c.object_id))

    def __str__(self):
        return "reachable edge"
