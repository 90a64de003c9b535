"""The relational schema behind persistent classes, and keeping a database in step.

A class may name multi-column indexes in ``INDEXES``, a tuple of tuples of attribute
names (e.g. ``(("zone", "ra"),)`` for range scans on both); they are created with the
table, or added to an existing one.

Inheritance maps to tables: the base table ``dbobject`` holds what every object has
(object id, class name, creation date, owner, project, privileges); each persistent class
has a table of its own attributes, joined on ``object_id``. An ordered list of references
is a link table ``<class>__<attribute>`` of (object id, position, referenced id).

`sync_schema` creates what is missing and adds new attributes as columns; a change that
would lose data (an attribute whose type changed) is refused with the way out.
"""

import datetime
import warnings
import zlib

import sqlalchemy as sa

from .attribute import REFERENCE, REFERENCE_LIST, SCALAR, SCALAR_LIST
from .errors import SchemaChangeError

__all__ = ["BASE_TABLE", "METADATA", "define_tables", "sync_schema"]

METADATA = sa.MetaData()

SEQUENCE_NAME = "awe_object_id_seq"

BASE_TABLE = sa.Table(
    "dbobject",
    METADATA,
    sa.Column("object_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("class_name", sa.String(128), nullable=False, index=True),
    sa.Column("creation_date", sa.DateTime),
    sa.Column("owner", sa.Text, index=True),
    sa.Column("project", sa.Text, index=True),
    sa.Column("privileges", sa.Integer),
)

#: SQLite has no sequences: the next free object id lives in this one-row table.
SQLITE_SEQUENCE_TABLE = sa.Table(
    "awe_sequence",
    METADATA,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("next_id", sa.BigInteger, nullable=False),
)

_SCALAR_COLUMN_TYPES = {
    bool: sa.Boolean(create_constraint=False),
    int: sa.BigInteger(),
    float: sa.Double(),
    str: sa.Text(),
    datetime.datetime: sa.DateTime(),
}


def column_type(prop):
    """The SQL type of a persistent attribute stored in a column."""
    if prop.kind == SCALAR:
        return _SCALAR_COLUMN_TYPES[prop._type]
    if prop.kind == SCALAR_LIST:
        return sa.JSON()
    return sa.BigInteger()


def _column(prop):
    if prop.kind == REFERENCE:
        return sa.Column(prop.name, sa.BigInteger, sa.ForeignKey("dbobject.object_id"),
                         index=True)
    return sa.Column(prop.name, column_type(prop))


def table_name(cls):
    return cls.__name__.lower()


def define_tables(cls, own_properties):
    """Define ``cls``'s table and link tables in `METADATA`, replacing a redefinition.

    Returns
    -------
    table : `sqlalchemy.Table`
    link_tables : `dict` [`str`, `sqlalchemy.Table`]
        The link table of each list-of-references attribute.
    """
    name = table_name(cls)
    for old in [t for t in METADATA.tables.values()
                if t.name == name or t.name.startswith(name + "__")]:
        METADATA.remove(old)
    columns = [_column(p) for p in own_properties.values() if p.kind != REFERENCE_LIST]
    indexes = [sa.Index(f"ix_{name}_{'_'.join(names)}", *names)
               for names in cls.__dict__.get("INDEXES", ())]
    table = sa.Table(name, METADATA,
                     sa.Column("object_id", sa.BigInteger,
                               sa.ForeignKey("dbobject.object_id"), primary_key=True,
                               autoincrement=False),
                     *columns, *indexes)
    links = {}
    for prop in own_properties.values():
        if prop.kind == REFERENCE_LIST:
            links[prop.name] = sa.Table(
                f"{name}__{prop.name}", METADATA,
                sa.Column("object_id", sa.BigInteger, sa.ForeignKey("dbobject.object_id"),
                          primary_key=True, autoincrement=False),
                sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
                sa.Column("ref_id", sa.BigInteger, sa.ForeignKey("dbobject.object_id"),
                          nullable=False, index=True),
            )
    return table, links


# -- keeping a database in step --------------------------------------------------------

def _category(sql_type):
    """A coarse type category, equal for what we declare and what a database reflects."""
    for category, types in (("json", sa.JSON), ("bool", sa.Boolean), ("int", sa.Integer),
                            ("float", (sa.Float, sa.Numeric)), ("datetime", sa.DateTime),
                            ("str", (sa.String, sa.Text))):
        if isinstance(sql_type, types):
            return category
    return type(sql_type).__name__.lower()


def sync_schema(engine, classes):
    """Create missing tables and columns for ``classes``; refuse changes that lose data.

    Raises
    ------
    SchemaChangeError
        Raised if a column exists with a type other than the attribute's.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One process at a time: DDL is transactional on PostgreSQL.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                         {"key": zlib.crc32(b"awe schema")})
            if conn.execute(sa.text(f"SELECT to_regclass('{SEQUENCE_NAME}')")).scalar() is None:
                conn.execute(sa.text(f"CREATE SEQUENCE {SEQUENCE_NAME}"))
        inspector = sa.inspect(conn)
        existing = set(inspector.get_table_names())
        if conn.dialect.name == "sqlite" and "awe_sequence" not in existing:
            SQLITE_SEQUENCE_TABLE.create(conn)
            conn.execute(SQLITE_SEQUENCE_TABLE.insert(), {"name": "object_id", "next_id": 1})
        created = []
        if "dbobject" not in existing:
            BASE_TABLE.create(conn)
            existing.add("dbobject")
            created.append("dbobject")
        for cls in classes:
            for table in (cls._table, *cls._link_tables.values()):
                if table.name in existing:
                    _add_new_columns(conn, inspector, cls, table)
                else:
                    table.create(conn)
                    existing.add(table.name)
                    created.append(table.name)
        if conn.dialect.name == "postgresql" and created:
            from .security import install_policies

            install_policies(conn, created, judged_tables(classes))


def judged_tables(classes):
    """The tables of ``classes`` holding attributes that only one logged operation
    changes (validity, its window): on PostgreSQL only a judge may update them."""
    return {prop.owner._table.name for cls in classes for prop in cls._properties.values()
            if prop.logged_by and prop.owner._table is not BASE_TABLE}


def _add_new_columns(conn, inspector, cls, table):
    reflected = {c["name"]: c for c in inspector.get_columns(table.name)}
    for column in table.columns:
        if column.name not in reflected:
            _add_column(conn, cls, table, column)
            continue
        declared, found = _category(column.type), _category(reflected[column.name]["type"])
        if declared != found:
            raise SchemaChangeError(
                f"{cls.__name__}.{column.name} is declared as {declared}, but the "
                f"database table {table.name!r} stores it as {found}; changing the type "
                "in place could lose data. Keep the old type and add a new attribute "
                "under a new name (copying the values over), or convert the column "
                "by hand with ALTER TABLE.")
    have = {index["name"] for index in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in have and all(c.name in reflected for c in index.columns):
            index.create(conn)
    unused = sorted(set(reflected) - {c.name for c in table.columns})
    if unused:
        warnings.warn(
            f"table {table.name!r} has columns {', '.join(unused)} that {cls.__name__} "
            "no longer declares; their values are kept but not loaded. Declare them "
            "again, or drop them by hand with ALTER TABLE ... DROP COLUMN.",
            stacklevel=3)


def _add_column(conn, cls, table, column):
    preparer = conn.dialect.identifier_preparer
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    references = " REFERENCES dbobject (object_id)" if column.foreign_keys else ""
    conn.execute(sa.text(
        f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {spec}{references}"))
    prop = cls.get_persistent_properties()[column.name]
    default = prop.new_value()
    if default is not None and prop.kind != REFERENCE:
        # Existing objects read as if they had been made with the declared default.
        conn.execute(table.update().values({column.name: default}))
    for index in column.table.indexes:
        if column in index.columns.values():
            index.create(conn)
