"""Persistent classes: declaring, making, loading, types, immutability, documentation."""

import datetime
import pydoc

import numpy as np
import pytest

import persistence
from persistence import DBObject, persistent
from tests.persistence.models import (CalibratedFrame, Ccd, Frame, ImageStatistics,
                                      ReducedFrame, night)


def test_scalars_round_trip(db):
    when = datetime.datetime(2026, 3, 1, 21, 30, 15, 250000)
    frame = Frame(exptime=30.5, nexp=3, object_name="M31", is_dark=True, date_obs=when,
                  dither_offsets=[0.0, 12.5, -12.5])
    frame.commit()
    loaded = Frame(object_id=frame.object_id)
    assert loaded is not frame
    assert (loaded.exptime, loaded.nexp, loaded.object_name, loaded.is_dark) == (
        30.5, 3, "M31", True)
    assert loaded.date_obs == when
    assert loaded.dither_offsets == (0.0, 12.5, -12.5)


def test_defaults_for_new_and_loaded_objects(db):
    frame = Frame()
    assert (frame.exptime, frame.nexp, frame.object_name, frame.is_dark) == (0.0, 1, "", False)
    assert frame.chip is None and frame.date_obs is None and frame.dither_offsets == []
    frame.commit()
    loaded = Frame(object_id=frame.object_id)
    assert (loaded.exptime, loaded.nexp, loaded.chip, loaded.dither_offsets) == (0.0, 1, None, ())


def test_list_defaults_are_not_shared(db):
    a, b = Frame(), Frame()
    a.dither_offsets.append(1.0)
    assert b.dither_offsets == []


def test_references_and_lists_of_references_round_trip(db):
    objects = night()
    reduced = ReducedFrame(object_id=objects["reduced"][1].object_id)
    assert reduced.chip.name == "ccd51"
    assert reduced.flat.imstat.stdev == 150.0
    assert [r.object_id for r in reduced.raw_frames] == [
        objects["raws"][1].object_id, objects["raws"][2].object_id]
    assert reduced.raw_frames[0].imstat.mean == 101.0


def test_list_of_references_keeps_order_and_duplicates(db):
    a, b = Frame(exptime=1.0), Frame(exptime=2.0)
    reduced = ReducedFrame(raw_frames=[b, a, b])
    reduced.commit()
    loaded = ReducedFrame(object_id=reduced.object_id)
    assert [f.exptime for f in loaded.raw_frames] == [2.0, 1.0, 2.0]
    assert loaded.raw_frames[0] is loaded.raw_frames[2]


def test_object_id_is_unique_across_classes(db):
    objects = night()
    everything = [*objects["chips"], *objects["filters"], objects["flat"], *objects["raws"],
                  *objects["reduced"], objects["calibrated"]]
    everything += [f.imstat for f in objects["raws"]]
    ids = [o.object_id for o in everything]
    assert None not in ids
    assert len(set(ids)) == len(ids)


def test_every_object_has_creation_date_and_context_columns(db):
    db.context = persistence.Context(user="alice", project="KIDS", privileges=2)
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    chip = Ccd(name="ccd50")
    chip.commit()
    loaded = Ccd(object_id=chip.object_id)
    assert (loaded.owner, loaded.project, loaded.privileges) == ("alice", "KIDS", 2)
    assert before - datetime.timedelta(seconds=1) <= loaded.creation_date
    assert loaded.creation_date <= datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None) + datetime.timedelta(seconds=1)


def test_loading_by_base_class_gives_the_subclass(db):
    objects = night()
    calibrated = Frame(object_id=objects["calibrated"].object_id)
    assert type(calibrated) is CalibratedFrame
    assert calibrated.zeropoint == 25.1
    assert calibrated.flat.object_id == objects["flat"].object_id
    assert type(DBObject(object_id=objects["chips"][0].object_id)) is Ccd


def test_loading_missing_object_fails(db):
    with pytest.raises(persistence.ObjectNotFoundError, match="no Frame with object_id 999"):
        Frame(object_id=999)


def test_loading_as_wrong_class_fails(db):
    chip = Ccd(name="ccd50")
    chip.commit()
    with pytest.raises(LookupError, match=f"object {chip.object_id} is a Ccd, not a Frame"):
        Frame(object_id=chip.object_id)


def test_numpy_scalars_are_accepted(db):
    frame = Frame(exptime=np.float32(2.5), nexp=np.int64(4), is_dark=np.bool_(True))
    assert (frame.exptime, frame.nexp, frame.is_dark) == (2.5, 4, True)
    assert type(frame.nexp) is int and type(frame.exptime) is float
    frame.commit()


def test_int_is_accepted_for_float():
    assert Frame(exptime=3).exptime == 3.0


@pytest.mark.parametrize("name, value, expected", [
    ("exptime", "30", "float"),
    ("nexp", 2.5, "int"),
    ("object_name", 5, "str"),
    ("date_obs", "2026-03-01", "datetime"),
    ("chip", ImageStatistics(), "Ccd"),
    ("dither_offsets", [1.0, "x"], "list of float"),
    ("dither_offsets", 1.0, "list of float"),
])
def test_wrong_type_on_assignment_fails(name, value, expected):
    with pytest.raises(persistence.AttributeTypeError, match=f"Frame.{name} .* expects {expected}"):
        Frame(**{name: value})
    frame = Frame()
    with pytest.raises(TypeError):
        setattr(frame, name, value)


def test_unknown_keyword_fails_with_close_match():
    with pytest.raises(persistence.UnknownAttributeError,
                       match="Frame has no persistent attribute 'exptim'; did you mean exptime"):
        Frame(exptim=3.0)


def test_timezone_aware_datetimes_are_stored_in_utc(db):
    cest = datetime.timezone(datetime.timedelta(hours=2))
    frame = Frame(date_obs=datetime.datetime(2026, 3, 1, 23, 0, tzinfo=cest))
    frame.commit()
    assert Frame(object_id=frame.object_id).date_obs == datetime.datetime(2026, 3, 1, 21, 0)


def test_committed_object_is_immutable(db):
    frame = Frame(exptime=30.0)
    frame.commit()
    with pytest.raises(persistence.ImmutableObjectError,
                       match=r"Frame \d+ is committed and immutable: 'exptime' cannot change"):
        frame.exptime = 60.0
    loaded = Frame(object_id=frame.object_id)
    with pytest.raises(AttributeError):
        loaded.chip = Ccd()
    assert loaded.exptime == 30.0


def test_committed_lists_cannot_be_changed_in_place(db):
    reduced = ReducedFrame(raw_frames=[Frame()], dither_offsets=[1.0])
    reduced.commit()
    with pytest.raises(AttributeError):
        reduced.raw_frames.append(Frame())
    with pytest.raises(AttributeError):
        ReducedFrame(object_id=reduced.object_id).dither_offsets.append(2.0)


def test_object_id_and_creation_date_are_read_only():
    with pytest.raises(persistence.ImmutableObjectError, match="assigned by the database"):
        Frame(object_id=None, creation_date=datetime.datetime(2026, 1, 1))
    frame = Frame()
    with pytest.raises(AttributeError, match="assigned by the database"):
        frame.object_id = 5


def test_mutable_attributes_change_only_by_explicit_commit(db):
    reduced = ReducedFrame(is_valid=1)
    reduced.commit()
    reduced.is_valid = 0
    reduced.quality_flags = 0b101
    assert ReducedFrame(object_id=reduced.object_id).is_valid == 1  # not yet written
    reduced.commit()
    loaded = ReducedFrame(object_id=reduced.object_id)
    assert (loaded.is_valid, loaded.quality_flags) == (0, 5)
    assert ReducedFrame.mutable_attributes() == ["best_raw", "is_valid", "privileges",
                                                 "quality_flags"]


def test_logged_attribute_changes_only_through_its_operation(db):
    reduced = ReducedFrame()
    reduced.privileges = 2  # before commit, like any attribute
    reduced.commit()
    with pytest.raises(persistence.ImmutableObjectError, match=r"only through context\.publish\(\)"):
        reduced.privileges = 3
    persistence.commit_changes({reduced: {"privileges": 3}})
    assert ReducedFrame(object_id=reduced.object_id).privileges == 3
    with pytest.raises(persistence.ImmutableObjectError, match="cannot change"):
        persistence.commit_changes({reduced: {"exptime": 2.0}})


def test_mutable_reference_may_point_to_a_new_object(db):
    reduced = ReducedFrame()
    reduced.commit()
    reduced.best_raw = Frame(exptime=7.0)
    reduced.commit()
    assert reduced.best_raw.object_id is not None
    assert ReducedFrame(object_id=reduced.object_id).best_raw.exptime == 7.0


def test_equality_is_identity_in_the_database(db):
    chip = Ccd(name="ccd50")
    other = Ccd(name="ccd50")
    assert chip != other
    chip.commit()
    same = Ccd(object_id=chip.object_id)
    assert same == chip and hash(same) == hash(chip)
    assert same != Ccd(object_id=night()["chips"][0].object_id)


def test_persistent_properties_are_introspectable():
    properties = ReducedFrame.get_persistent_properties()
    assert properties["exptime"].doc == "Exposure time [s]"
    assert properties["exptime"].type is float
    assert properties["flat"].type is Frame
    assert properties["raw_frames"].type_name() == "list of Frame"
    assert properties["is_valid"].mutable and not properties["exptime"].mutable
    assert {"object_id", "creation_date", "owner", "project", "privileges"} <= set(properties)
    assert ReducedFrame.exptime.__doc__ == "Exposure time [s]"


def test_help_shows_the_documentation():
    text = pydoc.render_doc(ReducedFrame, renderer=pydoc.plaintext)
    assert "A frame made from raw frames." in text
    assert "raw_frames : list of Frame" in text and "Inputs" in text
    assert "Flat field used" in text and "Exposure time [s]" in text


def test_redeclaring_an_inherited_attribute_fails():
    with pytest.raises(TypeError, match="already a persistent attribute of a base class"):
        type("BadFrame", (Frame,), {"exptime": persistent("again", float, 0.0)})


def test_two_classes_with_one_name_fail():
    with pytest.raises(TypeError, match="a persistent class named Ccd is already defined"):
        type("Ccd", (DBObject,), {"__module__": "elsewhere"})


def test_unsupported_type_fails():
    with pytest.raises(TypeError, match="not supported"):
        persistent("A complex number", complex, 0j)
    with pytest.raises(TypeError, match="exactly one"):
        persistent("Two types", [int, float], [])
