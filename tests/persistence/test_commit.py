"""Commit: atomic, with every new referenced object, nothing written on failure."""

import pytest
import sqlalchemy as sa

import persistence
from persistence import commit_all
from tests.persistence.models import Ccd, Frame, ImageStatistics, ReducedFrame


def count_rows(db, table):
    with db.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_commit_writes_new_referenced_objects(db):
    chip = Ccd(name="ccd50")
    raws = [Frame(chip=chip, imstat=ImageStatistics(stdev=float(i))) for i in range(3)]
    reduced = ReducedFrame(chip=chip, raw_frames=raws, flat=Frame(chip=chip))
    reduced.commit()
    for obj in (chip, *raws, reduced, reduced.flat, *(r.imstat for r in raws)):
        assert obj.is_committed and obj.object_id is not None
    assert count_rows(db, "ccd") == 1
    assert count_rows(db, "frame") == 5
    assert count_rows(db, "imagestatistics") == 3
    assert count_rows(db, "reducedframe__raw_frames") == 3


def test_commit_of_committed_reference_does_not_write_it_again(db):
    chip = Ccd(name="ccd50")
    chip.commit()
    Frame(chip=chip).commit()
    Frame(chip=Ccd(object_id=chip.object_id)).commit()
    assert count_rows(db, "ccd") == 1
    assert len(Frame.chip == chip) == 2


def test_commit_twice_is_harmless(db):
    chip = Ccd(name="ccd50")
    chip.commit()
    first = chip.object_id
    chip.commit()
    assert chip.object_id == first and count_rows(db, "ccd") == 1


def test_commit_all_writes_many_objects_in_one_transaction(db):
    statements = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    frames = [Frame(exptime=float(i), imstat=ImageStatistics(mean=float(i))) for i in range(300)]
    commit_all(frames)
    assert len(Frame.all()) == 300
    assert len(statements) <= 8  # ids, base rows, one insert per table


def test_failed_commit_writes_nothing_and_leaves_objects_new(db):
    chip = Ccd(name="gone")
    chip.commit()
    with db.engine.begin() as conn:  # the chip disappears behind our back
        conn.execute(sa.text("DELETE FROM ccd WHERE object_id = :i"), {"i": chip.object_id})
        conn.execute(sa.text("DELETE FROM dbobject WHERE object_id = :i"), {"i": chip.object_id})
    rows_before = {t: count_rows(db, t) for t in ("dbobject", "frame", "imagestatistics")}
    frame = Frame(chip=chip, imstat=ImageStatistics(mean=1.0))
    with pytest.raises(persistence.CommitError, match="nothing was written") as info:
        frame.commit()
    assert isinstance(info.value.__cause__, sa.exc.IntegrityError)
    assert {t: count_rows(db, t) for t in rows_before} == rows_before
    assert frame.object_id is None and not frame.is_committed
    assert frame.imstat.object_id is None and not frame.imstat.is_committed
    frame.chip = Ccd(name="back")  # mend it and commit again
    frame.commit()
    assert Frame(object_id=frame.object_id).chip.name == "back"


def test_commit_of_non_persistent_object_fails(db):
    with pytest.raises(persistence.CommitError, match="not a persistent object"):
        commit_all([Frame(), "a string"])
    assert count_rows(db, "dbobject") == 0


def test_list_mutated_in_place_is_checked_at_commit(db):
    reduced = ReducedFrame()
    reduced.raw_frames.append("not a frame")
    with pytest.raises(persistence.AttributeTypeError, match="ReducedFrame.raw_frames"):
        reduced.commit()
    assert count_rows(db, "dbobject") == 0


def test_context_sets_owner_project_privileges_unless_given(db):
    db.context = persistence.Context(user="carol", project="VIKING", privileges=3)
    mine = Ccd(name="a")
    theirs = Ccd(name="b", owner="dave", project="KIDS", privileges=1)
    commit_all([mine, theirs])
    assert (mine.owner, mine.project, mine.privileges) == ("carol", "VIKING", 3)
    db.context = persistence.Context(user="dave")  # dave's MyDB: only dave sees it
    loaded = Ccd(object_id=theirs.object_id)
    assert (loaded.owner, loaded.project, loaded.privileges) == ("dave", "KIDS", 1)


def test_context_rejects_unknown_privileges():
    with pytest.raises(ValueError, match="privileges must be one of"):
        persistence.Context(user="x", privileges=7)
