"""Turning rows into objects of their own classes, and loading references in batches.

Objects loaded together form a `Group`. Touching a reference on one member loads that
reference for every member in one statement, so a trend script over 10,000 rows costs
one statement per reference it follows, not one per row. Two named strategies say how
the statement finds the members:

``in-list``
    up to `IN_LIST_MAX` members: ``WHERE object_id IN (<their ids>)``;
``subquery``
    larger groups: ``WHERE object_id IN (<the query that produced them>)``, so the
    statement count and size do not grow with the number of rows.
"""

import collections

import sqlalchemy as sa

from .attribute import PENDING_LIST, REFERENCE, REFERENCE_LIST, Pending
from .dbobject import DBObject, registered_class, registered_classes
from .errors import QueryError
from .schema import BASE_TABLE

__all__ = ["IN_LIST_MAX", "Group", "PolymorphicSelect", "execute"]

#: Groups up to this size name their members' ids; larger ones repeat their query.
IN_LIST_MAX = 500

_cache = {}


def forget_classes():
    """Drop cached selects; called whenever a persistent class is (re)defined."""
    _cache.clear()


def execute(statement):
    """Run ``statement`` on the current database and return all its rows."""
    from .database import current_database

    db = current_database()
    db.ensure_tables()
    with db.engine.connect() as conn:
        return conn.execute(statement).all()


def class_chain(cls):
    """The persistent classes from `DBObject` down to ``cls``."""
    return [c for c in reversed(cls.__mro__) if isinstance(c, type)
            and issubclass(c, DBObject) and "_table" in vars(c)]


def chain_from(cls):
    """The FROM clause joining the tables of ``cls``'s chain (rows of ``cls`` only)."""
    from_ = BASE_TABLE
    for c in class_chain(cls)[1:]:
        from_ = from_.join(c._table, c._table.c.object_id == BASE_TABLE.c.object_id)
    return from_


class PolymorphicSelect:
    """The columns and FROM clause that load objects of a class and all its subclasses.

    The class's own chain of tables is inner-joined; the tables of its subclasses are
    outer-joined, so each row carries every column its actual class needs.
    """

    def __init__(self, cls):
        self.cls = cls
        subclasses = [c for c in registered_classes() if issubclass(c, cls) and c is not cls]
        from_ = chain_from(cls)
        for sub in subclasses:
            from_ = from_.outerjoin(sub._table,
                                    sub._table.c.object_id == BASE_TABLE.c.object_id)
        self.from_ = from_
        tables = [c._table for c in class_chain(cls)] + [c._table for c in subclasses]
        self.columns = list(BASE_TABLE.columns)
        self._position = {(BASE_TABLE.name, c.name): i for i, c in enumerate(self.columns)}
        for table in tables[1:]:
            for column in table.columns:
                if column.name != "object_id":
                    self._position[(table.name, column.name)] = len(self.columns)
                    self.columns.append(column)
        self._class_name_at = self._position[(BASE_TABLE.name, "class_name")]
        self._layouts = {}

    @classmethod
    def of(cls, persistent_class):
        """The (cached) select for ``persistent_class``."""
        select = _cache.get(persistent_class)
        if select is None:
            select = _cache[persistent_class] = cls(persistent_class)
        return select

    def _layout(self, class_name):
        """Where each attribute of the named class sits in a row."""
        layout = self._layouts.get(class_name)
        if layout is None:
            actual = registered_class(class_name)
            if not issubclass(actual, self.cls):
                raise QueryError(f"a row of class {class_name} appeared in a query on "
                                 f"{self.cls.__name__}; the database is inconsistent")
            scalars, references, lists = [], [], []
            for name, prop in actual._properties.items():
                if prop.kind == REFERENCE_LIST:
                    lists.append(name)
                    continue
                position = self._position[(prop.owner._table.name, name)]
                (references if prop.kind == REFERENCE else scalars).append((name, position))
            layout = self._layouts[class_name] = (actual, scalars, references, lists)
        return layout

    def build(self, row, group, offset=0):
        """Make the object a row (from ``offset`` on) describes, as a member of ``group``."""
        actual, scalars, references, lists = self._layout(row[offset + self._class_name_at])
        values = {name: row[offset + at] for name, at in scalars}
        for name, at in references:
            target = row[offset + at]
            values[name] = None if target is None else Pending(target)
        for name in lists:
            values[name] = PENDING_LIST
        obj = object.__new__(actual)
        state = obj.__dict__
        state["_values"] = values
        state["_committed"] = True
        state["_dirty"] = set()
        state["_group"] = group
        group.members[values["object_id"]] = obj
        return obj


class Group:
    """Objects loaded together, whose references are loaded together.

    Parameters
    ----------
    ids_select : `sqlalchemy.Select`, optional
        A select of the members' object ids (the ``subquery`` strategy).
    """

    def __init__(self, ids_select=None):
        self.members = {}
        self._ids_select = ids_select
        self._loaded = set()

    @classmethod
    def of_one(cls, obj):
        group = cls()
        group.members[obj.object_id] = obj
        return group

    @property
    def strategy(self):
        """``'in-list'`` or ``'subquery'``: how a batch statement names the members."""
        if self._ids_select is None or len(self.members) <= IN_LIST_MAX:
            return "in-list"
        return "subquery"

    def _ids(self):
        if self.strategy == "in-list":
            return list(self.members)
        return self._ids_select.correlate(None)

    def load(self, prop):
        """Load reference ``prop`` of every member that has it, in one statement."""
        if prop.name in self._loaded:
            return
        self._loaded.add(prop.name)
        target = PolymorphicSelect.of(prop.type)
        children = Group()
        if prop.kind == REFERENCE:
            referrer = prop.owner._table.alias()
            rows = execute(
                sa.select(referrer.c.object_id, *target.columns)
                .select_from(referrer.join(target.from_,
                                           referrer.c[prop.name] == BASE_TABLE.c.object_id))
                .where(referrer.c.object_id.in_(self._ids())))
            children._ids_select = sa.select(referrer.c[prop.name]).where(
                referrer.c.object_id.in_(self._ids()))
            found = {row[0]: _member(children, target, row) for row in rows}
            for owner_id, member in self.members.items():
                value = member._values.get(prop.name)
                if type(value) is Pending and owner_id in found:
                    member._values[prop.name] = found[owner_id]
        else:
            link = prop.owner._link_tables[prop.name]
            rows = execute(
                sa.select(link.c.object_id, link.c.idx, *target.columns)
                .select_from(link.join(target.from_, link.c.ref_id == BASE_TABLE.c.object_id))
                .where(link.c.object_id.in_(self._ids()))
                .order_by(link.c.object_id, link.c.idx))
            children._ids_select = sa.select(link.c.ref_id).where(
                link.c.object_id.in_(self._ids()))
            lists = collections.defaultdict(list)
            for row in rows:
                lists[row[0]].append(_member(children, target, row, offset=2))
            for owner_id, member in self.members.items():
                if member._values.get(prop.name) is PENDING_LIST:
                    member._values[prop.name] = lists.get(owner_id, [])


def _member(group, target, row, offset=1):
    """The object in ``row`` (from ``offset``), made once per group however often it appears."""
    existing = group.members.get(row[offset])
    return existing if existing is not None else target.build(row, group, offset)

