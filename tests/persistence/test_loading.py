"""Batch loading: following references over a result costs statements per reference,
not per row."""


import pytest
import sqlalchemy as sa

import persistence
from persistence import commit_all
from tests.persistence.sql import statements
from tests.persistence.models import (CalibratedFrame, Ccd, Frame, ImageStatistics,
                                      ReducedFrame, night)


def make_frames(rows, flats=10):
    chips = [Ccd(name=f"ccd{50 + i}") for i in range(4)]
    flat_frames = [Frame(chip=chips[i % 4], exptime=5.0,
                         imstat=ImageStatistics(stdev=100.0 + i)) for i in range(flats)]
    frames = [ReducedFrame(chip=chips[i % 4], exptime=60.0,
                           imstat=ImageStatistics(stdev=float(i)), flat=flat_frames[i % flats])
              for i in range(rows)]
    commit_all(frames)
    return frames


def trend(db):
    q = (ReducedFrame.chip.name.like("ccd*")) & (ReducedFrame.exptime > 10)
    with statements(db) as seen:
        x = [k.imstat.stdev for k in q]
        y = [k.flat.imstat.stdev for k in q]
    return x, y, seen


@pytest.mark.parametrize("rows", [1000, 10000])
def test_trend_script_takes_a_handful_of_statements(db, rows):
    make_frames(rows, flats=rows // 10)
    x, y, seen = trend(db)
    assert x == [float(i) for i in range(rows)]
    assert y == [100.0 + i % (rows // 10) for i in range(rows)]
    assert len(seen) <= 6, "\n".join(seen)
    assert len(seen) == 5  # query, imstat; query again, flat, flat.imstat


def test_statement_count_does_not_depend_on_the_strategy(db):
    make_frames(persistence.IN_LIST_MAX - 100)
    small = trend(db)[2]
    make_frames(persistence.IN_LIST_MAX + 100)
    large = trend(db)[2]
    assert len(small) == len(large) == 5
    assert "IN (SELECT" not in small[1].upper().replace("\n", " ")  # in-list
    assert "IN (SELECT" in large[1].upper().replace("\n", " ")  # subquery


def test_lists_of_references_load_in_one_statement_for_all_rows(db):
    objects = night()
    reduced = list(ReducedFrame.all())
    with statements(db) as seen:
        inputs = [[f.object_id for f in r.raw_frames] for r in reduced]
        stdevs = [[f.imstat.stdev for f in r.raw_frames] for r in reduced]
    assert len(seen) == 2
    raws = objects["raws"]
    assert inputs[0] == [raws[0].object_id, raws[1].object_id]
    assert inputs[-1] == [r.object_id for r in raws[4:]]  # the CalibratedFrame
    assert stdevs[0] == [5.0, 6.0]


def test_shared_reference_is_one_object(db):
    night()
    reduced = list(ReducedFrame.all())
    flats = {id(r.flat) for r in reduced}
    assert len(flats) == 1


def test_references_of_a_polymorphic_result_load_per_attribute(db):
    night()
    frames = list(Frame.all())
    with statements(db) as seen:
        flats = [f.flat.object_id for f in frames if isinstance(f, ReducedFrame)]
        zeropoints = [f.zeropoint for f in frames if isinstance(f, CalibratedFrame)]
        chips = [f.chip.name for f in frames]
    assert len(seen) == 2  # flat, chip; zeropoint came with the rows
    assert zeropoints == [25.1] and len(set(flats)) == 1 and len(chips) == len(frames)


def test_object_outside_the_batch_is_loaded_alone(db):
    objects = night()
    frames = list(ReducedFrame.all())
    new_flat = Frame(exptime=1.0)
    late = ReducedFrame(flat=new_flat)
    late.commit()
    loaded_late = ReducedFrame(object_id=late.object_id)
    assert frames[0].flat.object_id == objects["flat"].object_id
    assert loaded_late.flat.exptime == 1.0


def test_reference_to_deleted_object_reads_as_missing(db):
    frame = Frame(chip=Ccd(name="x"))
    frame.commit()
    loaded = Frame(object_id=frame.object_id)
    with db.engine.begin() as conn:  # remove the chip by hand, bypassing the constraint
        if db.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            conn.execute(sa.text("DELETE FROM ccd"))
            conn.execute(sa.text("DELETE FROM dbobject WHERE class_name = 'Ccd'"))
        else:
            conn.execute(sa.text("ALTER TABLE frame DROP CONSTRAINT frame_chip_fkey"))
            conn.execute(sa.text("DELETE FROM ccd"))
            conn.execute(sa.text("DELETE FROM dbobject WHERE class_name = 'Ccd'"))
    with pytest.raises(persistence.ObjectNotFoundError, match=r"Frame \d+ refers through 'chip' to object \d+, which is not visible to you \(or no longer in the database"):
        loaded.chip


def test_a_select_wider_than_sqlite_joins_takes_the_classes_its_rows_have(db, monkeypatch):
    from persistence import loading

    frames = make_frames(4, flats=2)
    monkeypatch.setattr(loading, "SQLITE_MAX_JOINED_TABLES", 2)  # DBObject has more
    with statements(db) as seen:
        loaded = list(persistence.DBObject.object_id.is_in([f.object_id for f in frames]))
        flats = [f.flat for f in loaded]
    assert [type(f) for f in loaded] == [ReducedFrame] * 4
    assert [f.flat.imstat.stdev for f in frames] == [f.imstat.stdev for f in flats]
    narrowing = [s for s in seen if "DISTINCT dbobject.class_name" in s]
    assert len(narrowing) == (2 if db.dialect == "sqlite" else 0), "\n".join(seen)
