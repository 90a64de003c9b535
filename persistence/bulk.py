"""Many rows at once: catalogues of thousands of objects written and read as columns.

`commit_all` makes, checks and writes Python objects one by one, which is right for
products and far too slow for the sources of an image or the running catalogue of a
survey. `insert_many` and `update_many` write columns (numpy arrays or lists) in a few
statements (PostgreSQL: ``COPY``, and one ``UPDATE`` from arrays); `Query.columns` reads
them back as arrays without making objects. The rows are ordinary objects of their
class: queries, references and batch loading work on them as on any other.
"""

import csv
import datetime
import io
import json
import math

import numpy as np
import sqlalchemy as sa

from .attribute import REFERENCE, REFERENCE_LIST, SCALAR, SCALAR_LIST
from .database import current_database
from .dbobject import DBObject, registered_classes
from .errors import CommitError, ImmutableObjectError, UnknownAttributeError, first_line
from .loading import class_chain
from .schema import BASE_TABLE

__all__ = ["delete_many", "insert_links", "insert_many", "update_many"]


def insert_many(cls, columns, *, connection):
    """Insert ``len(columns[...])`` new objects of ``cls`` given as columns.

    Parameters
    ----------
    cls : `type`
        A `DBObject` subclass.
    columns : `dict` [`str`, sequence]
        Values by attribute name, all of one length: scalars, or object ids (or
        committed objects) for references. Attributes not given take their defaults.
    connection : `sqlalchemy.engine.Connection`
        The transaction to write in, e.g. the one `DBObject.after_insert` is given,
        or ``Database.transaction()``'s.

    Returns
    -------
    object_ids : `numpy.ndarray`
        The new objects' ids, in the order of the rows.
    """
    properties = cls.get_persistent_properties()
    n = _length(columns)
    for name in columns:
        prop = properties.get(name)
        if prop is None or prop.kind not in (SCALAR, SCALAR_LIST, REFERENCE) or prop.read_only:
            raise UnknownAttributeError(
                f"insert_many: {cls.__name__}.{name} is not a scalar, list of scalars or "
                "reference attribute that can be written")
    db = current_database()
    ids = np.asarray(db.allocate_ids(connection, n), dtype=np.int64)
    if n == 0:
        return ids
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    context = db.context
    given = {"object_id": ids, "class_name": _repeat(cls.__name__, n),
             "creation_date": _repeat(now, n),
             "owner": columns.get("owner", _repeat(context.user, n)),
             "project": columns.get("project", _repeat(context.project, n)),
             "privileges": columns.get("privileges", _repeat(context.privileges, n))}
    for name, values in columns.items():
        given.setdefault(name, values)
    for chain_cls in class_chain(cls):
        table = chain_cls._table
        names = [c.name for c in table.columns]
        data = []
        for name in names:
            if name in given:
                values = given[name]
                prop = properties.get(name)
                if prop is not None and prop.kind == REFERENCE:
                    values = [v.object_id if isinstance(v, DBObject) else v for v in values]
                data.append(values)
            else:
                data.append(_repeat(properties[name].new_value(), n))
        _write(connection, table, names, data)
    return ids


def update_many(cls, object_ids, columns, *, connection):
    """Set mutable attributes of committed objects of ``cls``, given as columns.

    Raises
    ------
    ImmutableObjectError
        Raised if an attribute is not mutable.
    """
    properties = cls.get_persistent_properties()
    by_table = {}
    for name in columns:
        prop = properties.get(name)
        if prop is None or prop.kind not in (SCALAR, REFERENCE):
            raise UnknownAttributeError(f"update_many: {cls.__name__}.{name} is not a "
                                        "scalar or reference attribute")
        if not prop.mutable:
            raise ImmutableObjectError(
                f"{cls.__name__}.{name} cannot change after commit; only "
                f"{', '.join(cls.mutable_attributes()) or 'no attributes'} can")
        by_table.setdefault(prop.owner._table, []).append(name)
    ids = np.asarray(object_ids, dtype=np.int64)
    for table, names in by_table.items():
        if connection.dialect.name == "postgresql":
            _update_postgresql(connection, table, ids, names, [columns[n] for n in names])
        else:
            statement = table.update().where(
                table.c.object_id == sa.bindparam("_id")).values(
                {name: sa.bindparam(name) for name in names})
            rows = [dict(zip(["_id", *names], row)) for row in
                    zip(ids.tolist(), *[_plain(columns[n]) for n in names])]
            try:
                if rows:
                    connection.execute(statement, rows)
            except Exception as err:
                raise CommitError(f"updating {len(rows)} rows of {table.name!r} failed, "
                                  f"and the transaction with it: {first_line(err)}") from err


def insert_links(cls, name, object_ids, positions, ref_ids, *, connection):
    """Append to the list of references ``name`` of committed objects: each row puts
    ``ref_ids[k]`` at ``positions[k]`` of the list of ``object_ids[k]``. The
    attribute must be mutable."""
    prop = cls.get_persistent_properties().get(name)
    if prop is None or prop.kind != REFERENCE_LIST:
        raise UnknownAttributeError(f"{cls.__name__}.{name} is not a list of references")
    if not prop.mutable:
        raise ImmutableObjectError(f"{cls.__name__}.{name} cannot change after commit")
    link = prop.owner._link_tables[name]
    _write(connection, link, ["object_id", "idx", "ref_id"],
           [object_ids, positions, ref_ids])


def delete_many(object_ids, *, connection):
    """Delete the objects with ``object_ids``, whatever their classes: their rows in
    every table and their lists of references.

    Raises
    ------
    CommitError
        Raised, with the transaction rolled back, if other objects still refer to one
        of them.
    """
    ids = [int(i) for i in object_ids]
    tables = [link for cls in registered_classes() for link in cls._link_tables.values()]
    tables += [cls._table for cls in reversed(registered_classes()) if cls is not DBObject]
    existing = set(sa.inspect(connection).get_table_names())
    try:
        for table in [*tables, BASE_TABLE]:
            if table.name not in existing:
                continue
            for start in range(0, len(ids), 5000):
                connection.execute(table.delete().where(
                    table.c.object_id.in_(ids[start:start + 5000])))
    except sa.exc.IntegrityError as err:
        raise CommitError(f"deleting {len(ids)} objects failed, and the transaction with "
                          f"it: others still refer to them ({first_line(err)})") from err
    return len(ids)


# -- writing ---------------------------------------------------------------------------

def _write(connection, table, names, data):
    try:
        # PostgreSQL refuses COPY into tables whose rows it filters for this role.
        if connection.dialect.name == "postgresql" and not current_database().row_level_security:
            _copy(connection, table.name, names, data)
            return
        rows = [dict(zip(names, row)) for row in zip(*map(_plain, data))]
        if rows:
            connection.execute(table.insert(), rows)
    except Exception as err:
        raise CommitError(f"writing {len(data[0]) if data else 0} rows into "
                          f"{table.name!r} failed, and the transaction with it: "
                          f"{first_line(err)}") from err


def _copy(connection, table_name, names, data):
    """``COPY table (names) FROM STDIN`` the columns ``data`` (CSV)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(zip(*map(_csv_values, data)))
    buffer.seek(0)
    quoted = ", ".join(f'"{n}"' for n in names)
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(f"COPY \"{table_name}\" ({quoted}) FROM STDIN "
                           "WITH (FORMAT csv, NULL '\\N')",
                           buffer)
    finally:
        cursor.close()


def _update_postgresql(connection, table, ids, names, data):
    """One ``UPDATE ... FROM unnest(...)``: the new values travel as one array literal
    per column (one constant each, cheap to parse, unlike ``ARRAY[...]`` of thousands),
    in one round trip, and the rows are found by primary key."""
    types = [table.c[n].type.compile(connection.dialect) for n in names]
    arrays = ", ".join(f"%(c{k})s::{t}[]" for k, t in enumerate(types))
    quoted = ", ".join(f'"{n}"' for n in names)
    assignments = ", ".join(f'"{n}" = u."{n}"' for n in names)
    parameters = {"ids": _array_literal(ids), **{f"c{k}": _array_literal(values)
                                                 for k, values in enumerate(data)}}
    try:
        connection.exec_driver_sql(
            f'UPDATE "{table.name}" SET {assignments} FROM unnest(%(ids)s::bigint[], '
            f'{arrays}) AS u(object_id, {quoted}) WHERE "{table.name}".object_id = '
            "u.object_id", parameters)
    except Exception as err:
        raise CommitError(f"updating {len(ids)} rows of {table.name!r} failed, and the "
                          f"transaction with it: {first_line(err)}") from err


def _array_literal(values):
    """``values`` as the text of a PostgreSQL array: ``{1.5,NaN,NULL,"text"}``."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return "{" + ",".join(map(str, values.tolist())) + "}"
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        text = list(map(repr, values.astype(np.float64).tolist()))
        for k in np.flatnonzero(~np.isfinite(values)).tolist():
            text[k] = _array_element(float(values[k]))
        return "{" + ",".join(text) + "}"
    return "{" + ",".join(map(_array_element, _plain(values))) + "}"


def _array_element(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else _non_finite(v)
    if isinstance(v, int):
        return str(v)
    text = v.isoformat(sep=" ") if isinstance(v, datetime.datetime) else str(v)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _non_finite(v):
    """How PostgreSQL spells a NaN or infinite float."""
    return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")


def _length(columns):
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise CommitError("insert_many: the columns differ in length: "
                          + ", ".join(f"{n} {len(v)}" for n, v in columns.items()))
    return lengths.pop() if lengths else 0


def _repeat(value, n):
    return [value] * n


def _plain(values):
    """Python scalars (numpy's become int, float, bool, str; NaN stays NaN)."""
    if isinstance(values, np.ndarray):
        return values.tolist()
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _csv_values(values):
    """Values as COPY's CSV reads them: None is NULL (``\\N``), non-finite floats are
    spelt out, lists are JSON."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return values.tolist()
    if isinstance(values, np.ndarray) and values.dtype.kind == "f" and np.all(
            np.isfinite(values)):
        return values.tolist()  # the csv module writes repr(float): exact
    out = []
    for v in _plain(values):
        if v is None:
            out.append("\\N")
        elif isinstance(v, float) and not math.isfinite(v):
            out.append(_non_finite(v))
        elif isinstance(v, datetime.datetime):
            out.append(v.isoformat(sep=" "))
        elif isinstance(v, (list, tuple)):
            out.append(json.dumps(list(v)))
        else:
            out.append(v)
    return out
