"""Tables follow the classes: created on connect, new attributes added, losses refused."""

import hashlib

import pytest
import sqlalchemy as sa

import persistence
from persistence import DBObject, persistent


@pytest.fixture
def evolving(request):
    """A factory that defines (or redefines) a class of a name unique to this test.

    Class names are global, so each test gets its own, free of earlier tests' versions.
    """
    name = "Evolving" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]

    def define(**attributes):
        return type(name, (DBObject,), {"__module__": __name__, **attributes})

    define.table = name.lower()
    define.name = name
    return define


def columns(db, table):
    return {c["name"]: c for c in sa.inspect(db.engine).get_columns(table)}


def reconnect(db):
    db.close()
    return persistence.connect(db.url.render_as_string(hide_password=False))


def test_tables_are_created_on_connect(db):
    from tests.persistence import models  # noqa: F401  (imported classes get tables)

    tables = set(sa.inspect(db.engine).get_table_names())
    assert {"dbobject", "chip", "frame", "reducedframe", "calibratedframe",
            "reducedframe__raw_frames"} <= tables
    assert set(columns(db, "frame")) >= {"object_id", "chip", "exptime", "date_obs"}
    assert "exptime" not in columns(db, "reducedframe")  # inherited: in frame's table


def test_class_defined_after_connect_gets_its_table(db):
    late = type("LateComer", (DBObject,), {"__module__": __name__,
                                           "size": persistent("Size [pix]", int, 0)})
    late(size=3).commit()
    assert [o.size for o in late.all()] == [3]


def test_new_attribute_adds_a_column_on_next_connect(db, evolving):
    version1 = evolving(size=persistent("Size [pix]", int, 0))
    version1(size=3).commit()
    version2 = evolving(size=persistent("Size [pix]", int, 0),
                        gain=persistent("Gain [e-/ADU]", float, 2.5),
                        label=persistent("Label", str, None),
                        parent=persistent("Parent", evolving.name, None),
                        children=persistent("Children", [evolving.name], []))
    db = reconnect(db)
    assert {"gain", "label", "parent"} <= set(columns(db, evolving.table))
    old = version2.all().first()
    assert (old.size, old.gain, old.label, old.parent, old.children) == (3, 2.5, None, None, ())
    version2(size=4, gain=1.5, label="new", parent=old, children=[old]).commit()
    newest = (version2.size == 4).first()
    assert (newest.gain, newest.label, newest.parent.size) == (1.5, "new", 3)
    assert [c.size for c in newest.children] == [3]


def test_changed_attribute_type_is_refused(db, evolving):
    evolving(size=persistent("Size [pix]", int, 0))(size=3).commit()
    evolving(size=persistent("Size [pix]", str, ""))
    db.close()
    try:
        with pytest.raises(persistence.SchemaChangeError,
                           match=f"{evolving.name}.size is declared as str, but the "
                                 f"database table '{evolving.table}' stores it as int.*"
                                 "add a new attribute"):
            persistence.connect(db.url.render_as_string(hide_password=False))
    finally:
        evolving(size=persistent("Size [pix]", int, 0))
    db = persistence.connect(db.url.render_as_string(hide_password=False))  # restored: fine
    assert "size" in columns(db, evolving.table)


def test_removed_attribute_keeps_its_data_and_warns(db, evolving):
    evolving(size=persistent("Size [pix]", int, 0), gain=persistent("Gain", float, 1.0))(
        size=3, gain=2.0).commit()
    version2 = evolving(size=persistent("Size [pix]", int, 0))
    db.close()
    with pytest.warns(UserWarning, match=f"columns gain that {evolving.name} no longer declares"):
        db = persistence.connect(db.url.render_as_string(hide_password=False))
    assert [o.size for o in version2.all()] == [3]
    version2(size=5).commit()
    with db.engine.connect() as conn:
        assert sorted(conn.execute(sa.text(f"SELECT size, gain FROM {evolving.table}")).all(),
                      key=str) == [(3, 2.0), (5, None)]
