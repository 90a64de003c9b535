"""Writing objects: one transaction for an object and every new object it references.

Object ids come from one database sequence shared by all classes, reserved in bulk
inside the transaction, so a commit of 20,000 new objects is a handful of statements.
"""

import collections
import datetime

from .attribute import PENDING_LIST, REFERENCE, REFERENCE_LIST
from .database import current_database
from .dbobject import DBObject
from .errors import CommitError, ImmutableObjectError, first_line
from .loading import class_chain

__all__ = ["commit_all", "commit_changes"]


def commit_all(objects):
    """Commit ``objects`` and every new object they reference, atomically.

    New objects are inserted with fresh object ids, their creation date and the
    current context's owner, project and privileges (unless set). Committed objects
    have their changed mutable attributes written.

    Parameters
    ----------
    objects : iterable of `DBObject`

    Raises
    ------
    CommitError
        Raised if the database refused, or a new object's `DBObject.validate_commit`
        did; nothing was written and the new objects are still uncommitted.
    """
    objects = list(objects)
    db = current_database()
    db.ensure_tables()
    new, changed = _collect(objects)
    if not new and not changed:
        return
    if db.context.user is None:
        raise CommitError(f"cannot commit {_describe(objects)}: nobody is logged in; "
                          "connect with a context that names a user")
    for obj in new:
        obj.validate_commit()
    saved = [(obj, dict(obj._values)) for obj in new]
    try:
        with db.engine.begin() as conn:
            ids = db.allocate_ids(conn, len(new))
            now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            context = db.context
            for obj, object_id in zip(new, ids):
                values = obj._values
                values["object_id"] = object_id
                values["creation_date"] = now
                for name in ("owner", "project", "privileges"):
                    if values[name] is None:
                        values[name] = getattr(context, "user" if name == "owner" else name)
            _insert(conn, new)
            for obj in new:
                obj.after_insert(conn)
            _update(conn, changed)
    except Exception as err:
        for obj, values in saved:
            obj._values = values
        raise CommitError(
            f"commit of {_describe(objects)} failed and nothing was written: "
            f"{first_line(err)}") from err
    for obj in new + changed:
        obj._committed = True
        obj._dirty = frozenset()


def commit_changes(changes, *, together=()):
    """Write changes of committed objects, including attributes that only one
    operation may change (``persistent(..., mutable='context.set_valid')``), with the
    new objects ``together`` (their audit records), in one transaction.

    The operation named by the attribute calls this after checking who may; nothing
    else should.

    Parameters
    ----------
    changes : `dict` [`DBObject`, `dict` [`str`, object]]
        New values by attribute name, by object.
    together : iterable of `DBObject`
        New objects to commit with the changes.

    Raises
    ------
    CommitError
        Raised if the database refused; nothing was written and the objects keep
        their values.
    """
    before = []
    for obj, values in changes.items():
        for name in values:
            prop = obj._properties[name]
            if not prop.mutable:
                raise ImmutableObjectError(f"{type(obj).__name__}.{name} cannot change "
                                           "after commit")
        before.append((obj, {name: obj._values[name] for name in values}, obj._dirty))
        for name, value in values.items():
            obj._values[name] = obj._properties[name].validate(value)
        obj._dirty = obj._dirty | set(values)
    try:
        commit_all([*changes, *together])
    except Exception:
        for obj, values, dirty in before:
            obj._values.update(values)
            obj._dirty = dirty
        raise


def _collect(objects):
    """The new objects reachable from ``objects``, and the committed ones with changes."""
    new, changed, seen = [], [], set()
    stack = list(reversed(objects))
    while stack:
        obj = stack.pop()
        if not isinstance(obj, DBObject):
            raise CommitError(f"cannot commit {obj!r:.60}: not a persistent object")
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if obj._committed:
            if not obj._dirty:
                continue
            changed.append(obj)
            names = obj._dirty
        else:
            new.append(obj)
            names = obj._properties
        for name in names:
            prop = obj._properties[name]
            value = obj._values[name]
            if isinstance(value, list):  # a list may have been changed in place
                value = obj._values[name] = prop.validate(value)
            if prop.kind == REFERENCE and isinstance(value, DBObject):
                stack.append(value)
            elif prop.kind == REFERENCE_LIST and value is not PENDING_LIST:
                stack.extend(reversed(value))
    return new, changed


def _stored(prop, value):
    if prop.kind == REFERENCE and isinstance(value, DBObject):
        return value.object_id
    return value


def _own_row(cls, obj):
    """The row of ``obj`` in the table of ``cls``, one of its classes."""
    values = obj._values
    row = {"object_id": values["object_id"]}
    for column in cls._table.columns:
        if column.name == "class_name":
            row["class_name"] = type(obj).__name__
        elif column.name != "object_id":
            row[column.name] = _stored(cls._properties[column.name], values[column.name])
    return row


def _insert(conn, new):
    rows = collections.defaultdict(list)
    for obj in new:
        for cls in class_chain(type(obj)):
            rows[cls._table].append(_own_row(cls, obj))
            for name, link in cls._link_tables.items():
                rows[link].extend(_link_rows(obj, name))
    for table, table_rows in rows.items():
        if table_rows:
            conn.execute(table.insert(), table_rows)


def _link_rows(obj, name):
    return [{"object_id": obj.object_id, "idx": i, "ref_id": target.object_id}
            for i, target in enumerate(obj._values[name])]


def _update(conn, changed):
    for obj in changed:
        for name in sorted(obj._dirty):
            prop = obj._properties[name]
            if prop.kind == REFERENCE_LIST:
                link = prop.owner._link_tables[name]
                conn.execute(link.delete().where(link.c.object_id == obj.object_id))
                if obj._values[name]:
                    conn.execute(link.insert(), _link_rows(obj, name))
                continue
            table = prop.owner._table
            conn.execute(table.update().where(table.c.object_id == obj.object_id)
                         .values({name: _stored(prop, obj._values[name])}))


def _describe(objects):
    names = ", ".join(repr(o) for o in objects[:3])
    return names + (f" and {len(objects) - 3} more" if len(objects) > 3 else "")

