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
import contextlib
import gc
import operator
import weakref

import sqlalchemy as sa

from .attribute import PENDING_LIST, REFERENCE, REFERENCE_LIST
from .dbobject import DBObject, registered_class, registered_classes
from .errors import QueryError
from .schema import BASE_TABLE

__all__ = ["IN_LIST_MAX", "Group", "PolymorphicSelect", "execute"]

#: Groups up to this size name their members' ids; larger ones repeat their query.
IN_LIST_MAX = 500

#: SQLite joins at most 64 tables in one statement: a polymorphic select that would join
#: more first asks which classes its rows have, and joins only their tables.
SQLITE_MAX_JOINED_TABLES = 60

_cache = {}


def forget_classes():
    """Drop cached selects; called whenever a persistent class is (re)defined."""
    _cache.clear()


@contextlib.contextmanager
def collector_paused():
    """Pause the cyclic garbage collector while rows become objects.

    Building thousands of objects that all survive makes no garbage, yet triggers
    collections that traverse the whole heap; pausing them halves the cost of a large
    result.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def execute(statement):
    """Run ``statement`` on the current database and return all its rows."""
    from .database import current_database

    return current_database().execute(statement)


def _visible():
    from .database import current_database

    return current_database().visible()


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

    def __init__(self, cls, classes=None):
        self.cls = cls
        subclasses = [c for c in registered_classes() if issubclass(c, cls) and c is not cls
                      and (classes is None or c in classes)]
        self.table_count = len(class_chain(cls)) + len(subclasses)
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
        self._tables = {table.name for table in tables}
        self._layouts = {}

    @classmethod
    def of(cls, persistent_class, classes=None):
        """The (cached) select for ``persistent_class``, or for those of its subclasses
        in ``classes`` (a frozenset) only."""
        key = (persistent_class, classes)
        select = _cache.get(key)
        if select is None:
            select = _cache[key] = cls(persistent_class, classes)
        return select

    @classmethod
    def for_rows(cls, persistent_class, from_, where):
        """The select for the rows of ``persistent_class`` that ``from_`` and
        ``where`` find: all its subclasses' tables, unless that is more than SQLite
        joins (`SQLITE_MAX_JOINED_TABLES`): then those of the classes the rows have,
        which one more statement asks."""
        select = cls.of(persistent_class)
        if not select.too_wide():
            return select
        names = {row[0] for row in execute(
            sa.select(BASE_TABLE.c.class_name).distinct().select_from(from_).where(where))}
        return cls.of(persistent_class, frozenset(  # each with the tables it inherits
            c for actual in registered_classes() if actual.__name__ in names
            for c in class_chain(actual)))

    def too_wide(self):
        """Whether it joins more tables than the current database can (SQLite's 64)."""
        from .database import current_database

        return (self.table_count > SQLITE_MAX_JOINED_TABLES
                and current_database().dialect == "sqlite")

    def _layout(self, class_name, offset):
        """How to make an object of the named class from a row whose columns start at
        ``offset``: the class, the attribute names, a getter of their values, and the
        lists of references (loaded later)."""
        layout = self._layouts.get((class_name, offset))
        if layout is None:
            actual = registered_class(class_name)
            if not issubclass(actual, self.cls):
                raise QueryError(f"a row of class {class_name} appeared in a query on "
                                 f"{self.cls.__name__}; the database is inconsistent")
            if any(c._table.name not in self._tables for c in class_chain(actual)[1:]):
                raise QueryError(f"a row of class {class_name} appeared while reading "
                                 f"{self.cls.__name__} objects, added meanwhile; ask again")
            names, positions, lists = [], [], {}
            for name, prop in actual._properties.items():
                if prop.kind == REFERENCE_LIST:
                    lists[name] = PENDING_LIST
                else:
                    names.append(name)
                    positions.append(offset + self._position[(prop.owner._table.name, name)])
            getter = operator.itemgetter(*positions)
            layout = self._layouts[(class_name, offset)] = (actual, names, getter, lists)
        return layout

    def build(self, row, group, offset=0):
        """Make the object a row (from ``offset`` on) describes, as a member of ``group``.

        References stay object ids until followed (see `Group.load`).
        """
        actual, names, getter, lists = self._layout(row[offset + self._class_name_at], offset)
        values = dict(zip(names, getter(row)))
        if lists:
            values.update(lists)
        obj = object.__new__(actual)
        obj.__dict__ = {"_values": values, "_committed": True, "_group": group}
        group.members[values["object_id"]] = weakref.ref(obj)
        return obj


class Group:
    """Objects loaded together, whose references are loaded together.

    Parameters
    ----------
    ids_select : `sqlalchemy.Select`, optional
        A select of the members' object ids (the ``subquery`` strategy).
    """

    def __init__(self, ids_select=None):
        # Object id -> weak reference: a strong member -> group -> member cycle would
        # leave every result to the slow cyclic garbage collector.
        self.members = {}
        self._ids_select = ids_select
        self._loaded = set()

    @classmethod
    def of_one(cls, obj):
        group = cls()
        group.members[obj.object_id] = weakref.ref(obj)
        return group

    def _alive(self):
        for object_id, ref in list(self.members.items()):
            member = ref()
            if member is not None:
                yield object_id, member

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
        children = Group()
        if prop.kind == REFERENCE:
            # Members hold their targets' ids: fetch each distinct target once.
            referrer = prop.owner._table.alias()
            children._ids_select = sa.select(referrer.c[prop.name]).where(
                referrer.c.object_id.in_(self._ids()))
            if self.strategy == "in-list":
                wanted = list({value for _, member in self._alive()
                               if type(value := member._values.get(prop.name)) is int})
            else:
                wanted = children._ids_select.correlate(None)
            where = sa.and_(BASE_TABLE.c.object_id.in_(wanted), _visible())
            target = PolymorphicSelect.for_rows(prop.type, chain_from(prop.type), where)
            rows = execute(sa.select(*target.columns).select_from(target.from_).where(where))
            with collector_paused():
                found = {row[0]: target.build(row, children) for row in rows}
            for _, member in self._alive():
                value = member._values.get(prop.name)
                if type(value) is int and value in found:
                    member._values[prop.name] = found[value]
        else:
            link = prop.owner._link_tables[prop.name]
            target = PolymorphicSelect.for_rows(
                prop.type, link.join(chain_from(prop.type),
                                     link.c.ref_id == BASE_TABLE.c.object_id),
                sa.and_(link.c.object_id.in_(self._ids()), _visible()))
            rows = execute(
                sa.select(link.c.object_id, link.c.idx, *target.columns)
                .select_from(link.join(target.from_, link.c.ref_id == BASE_TABLE.c.object_id))
                .where(link.c.object_id.in_(self._ids()), _visible())
                .order_by(link.c.object_id, link.c.idx))
            children._ids_select = sa.select(link.c.ref_id).where(
                link.c.object_id.in_(self._ids()))
            lists = collections.defaultdict(list)
            with collector_paused():
                for row in rows:
                    lists[row[0]].append(_member(children, target, row, offset=2))
            for owner_id, member in self._alive():
                if member._values.get(prop.name) is PENDING_LIST:
                    member._values[prop.name] = lists.get(owner_id, [])


def _member(group, target, row, offset):
    """The object in ``row`` (from ``offset``), made once per group however often it appears."""
    ref = group.members.get(row[offset])
    existing = ref() if ref is not None else None
    return existing if existing is not None else target.build(row, group, offset)

