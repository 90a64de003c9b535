"""Bulk writing and reading of catalogue rows: insert_many, update_many, insert_links
and Query.columns, on both databases (COPY on PostgreSQL)."""

import numpy as np
import pytest
import sqlalchemy as sa

from persistence import (CommitError, ImmutableObjectError, UnknownAttributeError,
                         current_database, insert_links, insert_many,
                         update_many)
from tests.persistence.models import Frame, Star


def _stars(frame, n):
    return {"frame": [frame.object_id] * n, "field": np.arange(n) % 3,
            "name": [f"s{i}" if i % 4 else "" for i in range(n)],
            "mag": np.linspace(14.0, 24.0, n), "flagged": np.arange(n) % 2 == 0}


def test_inserted_rows_are_objects_like_any_other(db):
    frame = Frame(exptime=30.0)
    frame.commit()
    with current_database().transaction() as conn:
        ids = insert_many(Star, _stars(frame, 500), connection=conn)
    assert len(ids) == 500 and len(set(ids.tolist())) == 500
    stars = list(Star.all())
    assert [s.object_id for s in stars] == sorted(ids.tolist())
    assert stars[0].frame.exptime == 30.0 and stars[0].mag == 14.0
    assert stars[1].name == "s1" and stars[4].name == "", "empty text is not NULL"
    assert stars[0].flagged is True and stars[1].flagged is False
    assert stars[0].owner == db.context.user and stars[0].privileges == db.context.privileges
    assert len((Star.field == 1) & (Star.mag < 19.0)) == sum(
        1 for i, m in enumerate(np.linspace(14, 24, 500)) if i % 3 == 1 and m < 19)


def test_columns_read_without_objects_and_keep_missing_values(db):
    frame = Frame()
    frame.commit()
    columns = _stars(frame, 10)
    columns["mag"] = [None, float("nan"), float("inf")] + list(range(7))
    with current_database().transaction() as conn:
        ids = insert_many(Star, columns, connection=conn)
    read = (Star.field >= 0).order_by("object_id").columns("mag", "frame", "flagged", "name")
    assert read["object_id"].tolist() == ids.tolist()
    assert np.isnan(read["mag"][0]) and np.isnan(read["mag"][1]) and read["mag"][2] == np.inf
    assert read["frame"].tolist() == [frame.object_id] * 10
    assert read["flagged"].dtype == bool and read["name"][1] == "s1"


def test_a_failed_transaction_leaves_no_rows(db):
    frame = Frame()
    frame.commit()
    with pytest.raises(CommitError, match="rows into 'star' failed"):
        with current_database().transaction() as conn:
            insert_many(Star, _stars(frame, 100), connection=conn)
            insert_many(Star, {"frame": [999_999_999]}, connection=conn)  # no such object
    assert len(Star.all()) == 0
    with current_database().engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM dbobject WHERE class_name = 'Star'")
                            ).scalar_one() == 0


def test_rows_written_in_after_insert_commit_and_roll_back_with_their_owner(db):
    class Catalogue(Frame):
        rows = 0

        def after_insert(self, connection):
            insert_many(Star, _stars(self, self.rows), connection=connection)
            if self.rows > 5:
                raise ValueError("too many")

    good, bad = Catalogue(), Catalogue()
    good.rows, bad.rows = 3, 6
    good.commit()
    assert len(Star.frame == good) == 3
    with pytest.raises(CommitError, match="too many"):
        bad.commit()
    assert not bad.is_committed and len(Star.all()) == 3


def test_update_many_changes_mutable_attributes_only(db):
    frame = Frame()
    frame.commit()
    with current_database().transaction() as conn:
        ids = insert_many(Star, _stars(frame, 50), connection=conn)
    with current_database().transaction() as conn:
        update_many(Star, ids[::2], {"revised_mag": np.arange(25) + 0.5}, connection=conn)
        insert_links(Star, "neighbours", ids[:2], [0, 0], ids[2:4], connection=conn)
    read = Star.all().columns("revised_mag")
    assert read["revised_mag"][::2].tolist() == [i + 0.5 for i in range(25)]
    assert np.all(np.isnan(read["revised_mag"][1::2]))
    assert [s.object_id for s in Star(object_id=int(ids[0])).neighbours] == [int(ids[2])]
    with pytest.raises(ImmutableObjectError, match="mag cannot change"):
        with current_database().transaction() as conn:
            update_many(Star, ids, {"mag": np.zeros(50)}, connection=conn)
    with pytest.raises(UnknownAttributeError):
        with current_database().transaction() as conn:
            insert_many(Star, {"nonsense": [1]}, connection=conn)


def test_update_many_writes_any_value_exactly(db):
    frame = Frame()
    frame.commit()
    with current_database().transaction() as conn:
        ids = insert_many(Star, _stars(frame, 6), connection=conn)
    notes = ['say "hi"', "back\\slash", "a,b {c}", "NULL", "", "é ü"]
    mags = [0.1 + 0.2, float("nan"), float("inf"), -float("inf"), None, 1e-300]
    with current_database().transaction() as conn:
        update_many(Star, ids, {"note": notes, "revised_mag": mags,
                                "doubtful": [True, False] * 3}, connection=conn)
    read = Star.all().order_by("object_id").columns("note", "revised_mag", "doubtful")
    assert read["note"].tolist() == notes
    assert read["revised_mag"][0] == 0.1 + 0.2 and np.isnan(read["revised_mag"][1])
    assert read["revised_mag"][2:4].tolist() == [np.inf, -np.inf]
    assert np.isnan(read["revised_mag"][4]) and read["revised_mag"][5] == 1e-300
    assert read["doubtful"].tolist() == [True, False] * 3


def test_a_class_index_is_created(db):
    names = {ix["name"] for ix in sa.inspect(db.engine).get_indexes("star")}
    assert "ix_star_field_mag" in names
