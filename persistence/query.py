"""The query language: Python expressions on persistent classes, compiled to SQL.

``Class.attribute`` is an `Attribute`; following a reference (``Frame.chip.name``) extends
its path. Comparing an attribute gives a `Query`, and queries combine with ``&``, ``|``
and ``~``. All comparison operators go through `Attribute.operate`. A query runs only
when it is iterated, counted, indexed or converted.

Semantics worth knowing:

- A path through a list of references matches if *any* element matches:
  ``ReducedFrame.raw_frames.exptime > 10``.
- Comparisons never match a missing (``None``) value; use ``.is_null()``.
- ``~q`` is the complement of ``q`` within its class: objects with missing values are
  included.
- ``like`` uses shell wildcards (``*`` any text, ``?`` one character), case-sensitive on
  every database.
- Results come in ``object_id`` order unless `Query.order_by` says otherwise.
"""

import operator

import numpy as np
import sqlalchemy as sa
from sqlalchemy.sql import visitors

from .attribute import REFERENCE, REFERENCE_LIST, SCALAR, SCALAR_LIST, unknown_attribute
from .database import current_database
from .dbobject import DBObject
from .errors import QueryError, UnknownAttributeError
from .loading import (Group, PolymorphicSelect, _member, chain_from, class_chain,
                      collector_paused, execute)
from .schema import BASE_TABLE

__all__ = ["Attribute", "Query"]

_OPERATORS = {operator.eq: "==", operator.ne: "!=", operator.lt: "<", operator.le: "<=",
              operator.gt: ">", operator.ge: ">="}

_BOOL_HINT = ("the truth value of a query is not defined: combine queries with "
              "& (and), | (or) and ~ (not), not with 'and', 'or', 'not'; test for "
              "results with len(q) or q.first() is None")


class Attribute:
    """A persistent attribute reached from a class, perhaps through references.

    Parameters
    ----------
    root : `type`
        The persistent class the query is about.
    path : `tuple` [`Persistent`]
        The attributes followed from ``root``; all but the last are references.
    """

    __slots__ = ("root", "path")

    def __init__(self, root, path):
        self.root = root
        self.path = path

    @property
    def prop(self):
        """The last attribute of the path, whose value is compared."""
        return self.path[-1]

    @property
    def __doc__(self):
        return self.prop.doc

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        prop = self.prop
        if not prop.is_reference:
            raise UnknownAttributeError(
                f"{self} is a {prop.type_name()}, not a reference, so it has no "
                f"attribute {name!r}")
        target = prop.type
        step = target._properties.get(name)
        if step is None:
            raise unknown_attribute(target, name)
        return Attribute(self.root, self.path + (step,))

    def __str__(self):
        return ".".join([self.root.__name__] + [p.name for p in self.path])

    def __repr__(self):
        return f"<{self}: {self.prop.type_name()}, {self.prop.doc!r}>"

    def __bool__(self):
        raise TypeError(f"{self} is a query attribute; compare it (==, <, .like(), ...) "
                        "to make a query")

    # -- the one funnel ------------------------------------------------------------

    def operate(self, op, other):
        """Return the `Query` for ``self <op> other`` (every comparison comes here)."""
        return Query(self.root, _Comparison(self, op, other))

    def __eq__(self, other):
        return self.operate(operator.eq, other)

    def __ne__(self, other):
        return self.operate(operator.ne, other)

    def __lt__(self, other):
        return self.operate(operator.lt, other)

    def __le__(self, other):
        return self.operate(operator.le, other)

    def __gt__(self, other):
        return self.operate(operator.gt, other)

    def __ge__(self, other):
        return self.operate(operator.ge, other)

    __hash__ = None

    def like(self, pattern):
        """Match a shell-style pattern: ``*`` any text, ``?`` one character."""
        return Query(self.root, _Like(self, pattern))

    def is_in(self, values):
        """Match any of ``values`` (persistent objects for references)."""
        return Query(self.root, _In(self, list(values)))

    def is_null(self):
        """Match objects whose value (or reference) is missing."""
        return Query(self.root, _IsNull(self))

    def sql_column(self):
        """The SQLAlchemy column of an attribute of the class itself: for conditions
        the query language cannot spell, written in SQL (see `Query.where_sql`)."""
        if len(self.path) != 1 or self.prop.kind not in (SCALAR, REFERENCE):
            raise QueryError(f"{self} is not a scalar or reference column of "
                             f"{self.root.__name__} itself")
        return _column(self.prop)

    def __iter__(self):
        raise TypeError(f"{self} is a query attribute, not a list; compare it to make a "
                        "query, or iterate a query and read the attribute of each object")


# -- conditions -------------------------------------------------------------------------

def _column(prop):
    """The column of ``prop`` in its class's table (object_id for lists of references)."""
    table = prop.owner._table
    return table.c.object_id if prop.kind == REFERENCE_LIST else table.c[prop.name]


def _subselect(*columns):
    # Never correlate with an enclosing query that happens to use the same tables.
    return sa.select(*columns).correlate(None)


def _through(path, leaf, missing_reference_matches=False):
    """The clause for ``leaf(column)`` at the end of ``path``, with references as IN.

    With ``missing_reference_matches``, an object whose single reference on the way is
    missing matches too (its value at the end of the path is missing).
    """
    prop = path[0]
    if len(path) == 1:
        return leaf(_column(prop))
    if prop.kind not in (REFERENCE, REFERENCE_LIST):
        raise QueryError(f"{prop.owner.__name__}.{prop.name} is not a reference")
    inner_table = path[1].owner._table
    matching = _subselect(inner_table.c.object_id).where(
        _through(path[1:], leaf, missing_reference_matches))
    if prop.kind == REFERENCE:
        if missing_reference_matches:
            return sa.or_(_column(prop).is_(None), _column(prop).in_(matching))
        return _column(prop).in_(matching)
    link = prop.owner._link_tables[prop.name]
    return _column(prop).in_(_subselect(link.c.object_id).where(link.c.ref_id.in_(matching)))


def _value(attr, value):
    """``value`` as stored in ``attr``'s column, checked against its declared type."""
    prop = attr.prop
    if prop.kind == REFERENCE:
        if isinstance(value, DBObject):
            if value.object_id is None:
                raise QueryError(f"cannot compare {attr} with an object that is not "
                                 "committed; commit it first")
            if not isinstance(value, prop.type):
                raise QueryError(f"{attr} refers to {prop.type.__name__}, not to "
                                 f"{type(value).__name__}")
            return value.object_id
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise QueryError(f"{attr} is a reference; compare it with a committed "
                         f"{prop.type.__name__} or an object id, not {value!r:.60}")
    if prop.kind in (SCALAR_LIST, REFERENCE_LIST):
        raise QueryError(f"{attr} is a {prop.type_name()}; compare an attribute of its "
                         f"elements instead (e.g. {attr}.object_id == ...)"
                         if prop.kind == REFERENCE_LIST else
                         f"{attr} is a {prop.type_name()} and cannot be compared in a query")
    return prop.validate(value)


_CLAUSES = {}
"""Comparison clauses made so far, by attribute path, operator and value: planning
asks the same questions of many objects, and making a SQLAlchemy clause is slow."""

_COMBINED = {}
"""Clauses combined with & | ~, by operator and the ids of their (cached) operands."""


class _Comparison:
    def __init__(self, attr, op, value):
        self.attr, self.op, self.value = attr, op, value

    def clause(self):
        value = None if self.value is None else _value(self.attr, self.value)
        key = (self.attr.path, self.op, type(value), value)
        clause = _CLAUSES.get(key)
        if clause is None:
            if len(_CLAUSES) > 100_000:
                _CLAUSES.clear()
            clause = _CLAUSES[key] = self._make_clause(value)
        return clause

    def _make_clause(self, value):
        if value is None:
            if self.op is operator.eq:
                return _IsNull(self.attr).clause()
            if self.op is operator.ne:
                return sa.not_(_IsNull(self.attr).clause())
            raise QueryError(f"{self.attr} {_OPERATORS[self.op]} None is not defined; "
                             "use .is_null() or ~(... .is_null())")
        if self.attr.prop.kind == REFERENCE and self.op not in (operator.eq, operator.ne):
            raise QueryError(f"{self.attr} is a reference; only == and != apply to it")
        # An explicit parameter: SQLAlchemy refuses < and > against a bare True/False.
        return _through(self.attr.path, lambda column: self.op(
            column, sa.literal(value, column.type)))

    def __str__(self):
        return f"{_short(self.attr)} {_OPERATORS[self.op]} {self.value!r}"


class _Like:
    def __init__(self, attr, pattern):
        self.attr, self.pattern = attr, pattern

    def clause(self):
        if self.attr.prop.kind != SCALAR or self.attr.prop.type is not str:
            raise QueryError(f".like() applies to text attributes; {self.attr} is a "
                             f"{self.attr.prop.type_name()}")
        if not isinstance(self.pattern, str):
            raise QueryError(f"{self.attr}.like() takes a text pattern, not "
                             f"{self.pattern!r:.60}")
        sql = (self.pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
               .replace("*", "%").replace("?", "_"))
        return _through(self.attr.path, lambda column: column.like(sql, escape="\\"))

    def __str__(self):
        return f"{_short(self.attr)}.like({self.pattern!r})"


class _In:
    def __init__(self, attr, values):
        self.attr, self.values = attr, values

    def clause(self):
        values = [_value(self.attr, v) for v in self.values if v is not None]
        clause = _through(self.attr.path, lambda column: column.in_(values))
        if any(v is None for v in self.values):
            clause = sa.or_(clause, _IsNull(self.attr).clause())
        return clause

    def __str__(self):
        return f"{_short(self.attr)}.is_in({self.values!r:.80})"


class _IsNull:
    def __init__(self, attr):
        self.attr = attr

    def clause(self):
        if self.attr.prop.kind == REFERENCE_LIST:
            raise QueryError(f"{self.attr} is a list; a list is empty, never missing")
        return _through(self.attr.path, lambda column: column.is_(None),
                        missing_reference_matches=True)

    def __str__(self):
        return f"{_short(self.attr)}.is_null()"


class _SQL:
    def __init__(self, clause, description):
        self._clause, self.description = clause, description

    def clause(self):
        return self._clause

    def __str__(self):
        return self.description


class _Boolean:
    def __init__(self, function, symbol, *operands):
        self.function, self.symbol, self.operands = function, symbol, operands

    def clause(self):
        operands = [o.clause() for o in self.operands]
        key = (self.symbol, *map(id, operands))
        combined = _COMBINED.get(key)
        if combined is None:
            if len(_COMBINED) > 100_000:
                _COMBINED.clear()
            # The operands are kept with it, so that the ids in the key stay theirs.
            combined = _COMBINED[key] = (self.function(*operands), operands)
        return combined[0]

    def __str__(self):
        if self.symbol == "~":
            return f"~({self.operands[0]})"
        return f"({self.operands[0]}) {self.symbol} ({self.operands[1]})"


def _complement(clause):
    # A NULL comparison counts as "no match", so its complement matches.
    return sa.not_(sa.func.coalesce(clause, sa.false()))


def _short(attr):
    return ".".join(p.name for p in attr.path)


# -- queries ----------------------------------------------------------------------------

class Query:
    """A lazy query for objects of a persistent class and its subclasses.

    Made by comparing class attributes (``Frame.exptime > 10``) or with ``Class.all()``;
    nothing runs until the query is iterated, counted, indexed or converted.

    Examples
    --------
    >>> q = (ReducedFrame.chip.name == 'ccd50') & (ReducedFrame.exptime > 10)
    >>> len(q)
    12
    >>> stdevs = [k.flat.imstat.stdev for k in q]      # a handful of statements in all
    >>> newest = q.max('date_obs')
    >>> q.order_by('exptime', descending=True)[:3].to_table('object_id', 'chip.name')
    """

    def __init__(self, cls, condition=None, *, order=(), offset=0, limit=None):
        self.cls = cls
        self._condition = condition
        self._order = order
        self._offset = offset
        self._limit = limit

    @classmethod
    def where_sql(cls, target, clause, description):
        """A query on ``target`` (a persistent class) for a condition written in
        SQLAlchemy (on columns from `Attribute.sql_column`), shown as
        ``description``; it combines with others like any query."""
        return cls(target, _SQL(clause, description))

    def _replace(self, **changes):
        fields = {"order": self._order, "offset": self._offset, "limit": self._limit}
        return Query(self.cls, self._condition, **{**fields, **changes})

    # -- combining ------------------------------------------------------------------

    def _combine(self, other, function, symbol):
        if not isinstance(other, Query):
            raise QueryError(f"cannot combine a query with {other!r:.60}; both sides of "
                             f"{symbol} must be queries, e.g. (A.x > 1) {symbol} (A.y < 2)")
        for q in (self, other):
            q._refuse_if_sliced("combine")
        if issubclass(self.cls, other.cls):
            cls = self.cls
        elif issubclass(other.cls, self.cls):
            cls = other.cls
        else:
            raise QueryError(f"cannot combine a query on {self.cls.__name__} with one on "
                             f"{other.cls.__name__}: they are unrelated classes")
        if self._condition is None or other._condition is None:
            # An unconditioned query matches everything of its class.
            if function is sa.and_:
                condition = self._condition or other._condition
            else:
                condition = None
        else:
            condition = _Boolean(function, symbol, self._condition, other._condition)
        return Query(cls, condition, order=self._order or other._order)

    def __and__(self, other):
        return self._combine(other, sa.and_, "&")

    def __or__(self, other):
        return self._combine(other, sa.or_, "|")

    def __invert__(self):
        self._refuse_if_sliced("negate")
        condition = _Nothing() if self._condition is None else _Boolean(
            _complement, "~", self._condition)
        return Query(self.cls, condition, order=self._order)

    def __bool__(self):
        raise TypeError(_BOOL_HINT)

    # -- narrowing --------------------------------------------------------------------

    def order_by(self, *attributes, descending=False):
        """Return the query sorted by ``attributes`` (names, dotted paths or attributes).

        Missing values sort last either way; ties keep ``object_id`` order.
        """
        self._refuse_if_sliced("sort")
        paths = tuple(self._attribute(a) for a in attributes)
        return self._replace(order=tuple((p, descending) for p in paths))

    def _refuse_if_sliced(self, what):
        if self._offset or self._limit is not None:
            raise QueryError(f"{what} before slicing: a slice of a query is its final "
                             f"form (e.g. q.order_by('exptime')[:10]); to {what} within a "
                             "slice, work on list(q[a:b])")

    def user_only(self):
        """Return the query narrowed to objects owned by the context's user."""
        return self & (self.cls.owner == current_database().context.user)

    def project_only(self):
        """Return the query narrowed to objects of the context's project."""
        return self & (self.cls.project == current_database().context.project)

    # -- running ----------------------------------------------------------------------

    def _where(self):
        return None if self._condition is None else self._condition.clause()

    def _order_clauses(self):
        clauses = []
        for attr, descending in self._order:
            column = _ordering_value(attr.path)
            clauses.append((column.desc() if descending else column.asc()).nulls_last())
        clauses.append(BASE_TABLE.c.object_id.asc())
        return clauses

    def _finish(self, statement, ordered=True):
        where = self._where()
        if where is not None:
            statement = statement.where(where)
        statement = statement.where(current_database().visible())
        if ordered or self._offset or self._limit is not None:
            statement = statement.order_by(*self._order_clauses())
        if self._offset:
            statement = statement.offset(self._offset)
        if self._limit is not None:
            statement = statement.limit(self._limit)
        return statement

    def _id_select(self):
        """A select of the matching object ids (the ``subquery`` strategy)."""
        return self._finish(sa.select(BASE_TABLE.c.object_id)
                            .select_from(chain_from(self.cls)), ordered=False)

    def _fetch(self):
        where = self._where()
        target = PolymorphicSelect.for_rows(
            self.cls, chain_from(self.cls),
            sa.and_(sa.true() if where is None else where, current_database().visible()))
        rows = execute(self._finish(sa.select(*target.columns).select_from(target.from_)))
        group = Group(ids_select=self._id_select())
        with collector_paused():
            return [target.build(row, group) for row in rows]

    def __iter__(self):
        return iter(self._fetch())

    def count(self):
        """Return the number of matching objects (one ``SELECT count(*)``)."""
        ids = self._id_select().subquery()
        return execute(sa.select(sa.func.count()).select_from(ids))[0][0]

    __len__ = count

    def __getitem__(self, index):
        if isinstance(index, slice):
            if index.step not in (None, 1):
                return list(self)[index]
            start, stop = index.start, index.stop
            if (start or 0) < 0 or (stop is not None and stop < 0):
                start, stop, _ = index.indices(self.count())
            start = start or 0
            limit = None if stop is None else max(stop - start, 0)
            if self._limit is not None:
                limit = max(min(self._limit - start, limit if limit is not None else self._limit), 0)
            return self._replace(offset=self._offset + start, limit=limit)
        if not isinstance(index, int):
            raise TypeError(f"a query is indexed by an int or a slice, not {index!r:.40}")
        position = index if index >= 0 else self.count() + index
        found = list(self[position:position + 1]) if position >= 0 else []
        if not found:
            raise IndexError(f"query result index {index} out of range")
        return found[0]

    def first(self):
        """Return the first matching object, or ``None``."""
        found = list(self[0:1])
        return found[0] if found else None

    def max(self, attribute):
        """Return the object with the largest value of ``attribute``, or ``None``."""
        return self.order_by(attribute, descending=True).first()

    def min(self, attribute):
        """Return the object with the smallest value of ``attribute``, or ``None``."""
        return self.order_by(attribute).first()

    def to_table(self, *attributes):
        """Return the matching objects as an astropy `~astropy.table.Table`.

        Parameters
        ----------
        *attributes : `str` or `Attribute`
            Columns, as names or dotted paths (``'flat.imstat.stdev'``); by default
            ``object_id`` and every scalar attribute of the class.
        """
        from ._table import objects_to_table

        if not attributes:
            attributes = [name for name, p in self.cls._properties.items()
                          if p.kind in (SCALAR, REFERENCE)]
        paths = [self._attribute(a) for a in attributes]
        return objects_to_table(list(self), [str(a)[len(self.cls.__name__) + 1:]
                                             for a in paths])

    def columns(self, *names):
        """Return the values of attributes of the matching objects as numpy arrays,
        without making the objects: the fast way to read thousands of rows.

        Parameters
        ----------
        *names : `str`
            Scalar, list-of-scalar or reference attributes of the class itself
            (references give object ids, lists give an array of lists); ``object_id``
            is always included.

        Returns
        -------
        columns : `dict` [`str`, `numpy.ndarray`]
            By name, in the query's order.
        """
        props = [self._attribute(name).path for name in names]
        for path in props:
            if len(path) != 1 or path[0].kind not in (SCALAR, SCALAR_LIST, REFERENCE):
                raise QueryError(f"columns() reads scalar or reference attributes of "
                                 f"{self.cls.__name__} itself, not "
                                 f"{'.'.join(p.name for p in path)}")
        columns = [_column(path[0]) for path in props]
        statement = self._on_own_table(columns)
        if statement is None:
            statement = self._finish(sa.select(BASE_TABLE.c.object_id, *columns)
                                     .select_from(chain_from(self.cls)))
        rows = execute(statement)
        values = list(zip(*rows)) if rows else [()] * (len(columns) + 1)
        out = {"object_id": np.array(values[0], dtype=np.int64)}
        for path, column in zip(props, values[1:]):
            prop = path[0]
            kind = {REFERENCE: int, SCALAR_LIST: list}.get(prop.kind, prop.type)
            if kind is float:
                out[prop.name] = np.array(column, dtype=np.float64)  # missing: NaN
            elif kind in (int, bool) and None not in column:
                out[prop.name] = np.array(column, dtype=np.int64 if kind is int else bool)
            else:
                out[prop.name] = cells = np.empty(len(column), dtype=object)
                for k, value in enumerate(column):  # lists stay lists
                    cells[k] = value
        return out

    def _on_own_table(self, columns):
        """The select of ``columns`` from the class's own table alone, without the
        join to the base table, when nothing but ``object_id`` is needed from it (a
        direct subclass of DBObject; catalogue rows): half the work for thousands of
        rows. None otherwise."""
        chain = class_chain(self.cls)
        if len(chain) != 2 or any(c.table is not chain[1]._table for c in columns):
            return None
        own = chain[1]._table
        statement = visitors.replacement_traverse(
            self._finish(sa.select(own.c.object_id, *columns).select_from(own)), {},
            lambda element: own.c.object_id if element is BASE_TABLE.c.object_id else None)
        return None if BASE_TABLE in statement.get_final_froms() else statement

    def _attribute(self, attribute):
        """``attribute`` (a name, dotted path or `Attribute`) as an `Attribute` of ours."""
        if isinstance(attribute, Attribute):
            if not issubclass(self.cls, attribute.root):
                raise QueryError(f"{attribute} is not an attribute of {self.cls.__name__}")
            return Attribute(self.cls, attribute.path)
        if not isinstance(attribute, str):
            raise QueryError(f"name an attribute by a string or Class.attribute, not "
                             f"{attribute!r:.60}")
        attr = None
        for i, name in enumerate(attribute.split(".")):
            if i == 0:
                prop = self.cls._properties.get(name)
                if prop is None:
                    raise unknown_attribute(self.cls, name)
                attr = Attribute(self.cls, (prop,))
            else:
                attr = getattr(attr, name)
        return attr

    def __repr__(self):
        where = "all" if self._condition is None else str(self._condition)
        return f"<Query on {self.cls.__name__}: {where}>"


FETCH_TOGETHER_MAX = 250
"""Queries per statement in `fetch_together`: an ``OR`` of that many conditions stays
well within SQLite's expression depth limit (1000)."""

FETCH_TOGETHER_IN_LIST_MAX = 10_000
"""Objects of a `fetch_together` statement up to which their references are loaded
by naming their ids."""


def fetch_together(queries):
    """Return the results of many queries on one class, asking once per 250 queries.

    One statement selects the objects matching any of the queries, with a flag per
    query saying which ones each matches: the database does all the matching and plans
    one join, however many queries. Objects in several results are made once, and the
    objects of a statement are loaded together (their references in batches). Each
    result is in ``object_id`` order; sorting and slicing are not allowed.

    Parameters
    ----------
    queries : sequence of `Query`
        Queries on the same class.

    Returns
    -------
    results : `list` of `list`
        The objects of each query, in the order of ``queries``.

    Examples
    --------
    >>> per_chip = fetch_together([Frame.chip == chip for chip in chips])
    """
    queries = list(queries)
    classes = {q.cls for q in queries}
    if len(classes) > 1:
        raise QueryError("fetch_together() takes queries on one class, not on "
                         + ", ".join(sorted(c.__name__ for c in classes)))
    for q in queries:
        q._refuse_if_sliced("fetch together")
    results = []
    visible = current_database().visible()
    for start in range(0, len(queries), FETCH_TOGETHER_MAX):
        batch = queries[start:start + FETCH_TOGETHER_MAX]
        statement, ids_select, target = _together(batch[0].cls,
                                                  [q._where() for q in batch], visible)
        rows = execute(statement)
        offset = len(batch)
        # Name the members by id when loading their references unless there are very
        # many: repeating this statement inside each of those loads costs far more.
        many = len({row[offset] for row in rows}) > FETCH_TOGETHER_IN_LIST_MAX
        group = Group(ids_select=ids_select if many else None)
        found = [[] for _ in batch]
        with collector_paused():
            for row in rows:
                obj = _member(group, target, row, offset=offset)
                for i in range(offset):
                    if row[i]:
                        found[i].append(obj)
        results += [sorted(objects, key=lambda o: o.object_id) for objects in found]
    return results


_STATEMENTS = {}
"""`fetch_together` statements by class and conditions: a planner asks the same
many questions each time, and building and hashing such a statement is slow."""


def _together(cls, wheres, visible):
    """The statement selecting a flag per condition and the visible objects matching
    any, and a select of their ids."""
    target = PolymorphicSelect.of(cls)
    if target.too_wide():
        target = PolymorphicSelect.for_rows(cls, chain_from(cls), _any_of(wheres, visible))
    key = (cls, id(visible), id(target), *map(id, wheres))
    found = _STATEMENTS.get(key)
    if found is None:
        if len(_STATEMENTS) > 1000:
            _STATEMENTS.clear()
        conditions = [sa.true() if w is None else w for w in wheres]
        any_of = _any_of(wheres, visible)
        found = _STATEMENTS[key] = (
            sa.select(*[sa.case((c, 1), else_=0) for c in conditions], *target.columns)
            .select_from(target.from_).where(any_of),
            sa.select(BASE_TABLE.c.object_id).select_from(chain_from(cls)).where(any_of),
            target, (wheres, visible))  # kept so that the ids in the key stay theirs
    return found[0], found[1], found[2]


def _any_of(wheres, visible):
    """The visible objects meeting any of the conditions ``wheres`` (None: all)."""
    return sa.and_(sa.or_(*[sa.true() if w is None else w for w in wheres]), visible)


class _Nothing:
    """The complement of an unconditioned query."""

    def clause(self):
        return sa.false()

    def __str__(self):
        return "nothing"


def _ordering_value(path, table=None):
    """A column, or a correlated scalar subquery for a path through references.

    ``table`` is the (aliased) table holding ``path[0]``; by default its class table.
    """
    prop = path[0]
    if len(path) == 1 and prop.kind in (SCALAR, REFERENCE):
        return _column(prop) if table is None else table.c[prop.name]
    if len(path) == 1 or prop.kind != REFERENCE:
        raise QueryError(f"cannot sort by {'.'.join(p.name for p in path)}: "
                         f"{prop.name} is a {prop.type_name()}; sort by a scalar reached "
                         "through single references")
    outer = _column(prop) if table is None else table.c[prop.name]
    inner = path[1].owner._table.alias()
    value = _ordering_value(path[1:], inner)
    return sa.select(value).where(inner.c.object_id == outer).scalar_subquery()
