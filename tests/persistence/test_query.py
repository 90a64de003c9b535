"""The query language: comparisons, paths, boolean algebra, results, ordering, errors.

Most tests run on the small night of `night()` (14 frames: a flat, 8 raw frames, 4
reduced frames and 1 calibrated frame) and compare the exact object ids a query returns
with the ones computed from the committed objects. Results come in object_id order, so
``ids(q) == expect(...)`` checks the members, their order and the absence of duplicates.
"""

import datetime
import types

import numpy as np
import pytest

import persistence
from persistence import AttributeTypeError, Query, QueryError, UnknownAttributeError, commit_all
from tests.persistence.sql import statements
from tests.persistence.models import (CalibratedFrame, Ccd, Filter, Frame, ImageStatistics,
                                      ReducedFrame, night)

START = datetime.datetime(2026, 3, 1, 20, 0)
UTC_PLUS_2 = datetime.timezone(datetime.timedelta(hours=2))


# -- helpers ------------------------------------------------------------------------------

def ids(objects):
    """The object ids of a query's results (or of any objects), in their order."""
    return [o.object_id for o in objects]


def expect(*objects):
    """The ids a query for exactly ``objects`` returns: sorted, as results come by default."""
    return sorted(o.object_id for o in objects)


def minute(i):
    return START + datetime.timedelta(minutes=i)


def as_datetime(value):
    """A table entry of a datetime column (an astropy Time or a datetime) as a datetime."""
    return value.datetime if hasattr(value, "datetime") else value


@pytest.fixture
def data(db):
    """The committed night, with ``frames``: every Frame of it (14), in creation order.

    flat: ccd50, r, exptime 2, 'FLAT', imstat stdev 150, no date_obs.
    raws[i]: ccd50 for even i else ccd51, exptime 10 (i + 1), 'field0' (i < 4) or 'field1',
        date_obs START + i minutes, imstat stdev 5 + i.
    reduced[i] (i < 4): chip, exptime, object_name and date_obs of raws[i]; raw_frames
        raws[i], raws[i + 1]; flat; imstat stdev 0.1 (i + 1).
    calibrated: ccd51, exptime 80, 'field1', raw_frames raws[4:], flat, zeropoint 25.1,
        no imstat, no date_obs.
    """
    n = types.SimpleNamespace(**night())
    n.frames = [n.flat, *n.raws, *n.reduced, n.calibrated]
    return n


# -- comparisons on scalars -----------------------------------------------------------------

def test_float_comparisons(db, data):
    raws, reduced, calibrated, flat = data.raws, data.reduced, data.calibrated, data.flat
    assert ids(Frame.exptime == 80.0) == expect(raws[7], calibrated)
    assert ids(Frame.exptime != 10.0) == expect(
        *[f for f in data.frames if f not in (raws[0], reduced[0])])
    assert ids(Frame.exptime < 20.0) == expect(flat, raws[0], reduced[0])
    assert ids(Frame.exptime <= 20.0) == expect(flat, raws[0], raws[1], reduced[0], reduced[1])
    assert ids(Frame.exptime > 60.0) == expect(raws[6], raws[7], calibrated)
    assert ids(Frame.exptime >= 70.0) == expect(raws[6], raws[7], calibrated)
    assert ids(Frame.exptime > 70) == expect(raws[7], calibrated)  # an int is a fine float


def test_reflected_comparison_is_the_same_query(db, data):
    assert ids(70.0 < Frame.exptime) == ids(Frame.exptime > 70.0)
    assert ids(20.0 >= Frame.exptime) == ids(Frame.exptime <= 20.0)


def test_int_comparisons(db, data):
    three, five = Frame(nexp=3), Frame(nexp=5)
    commit_all([three, five])
    assert ids(Frame.nexp == 1) == expect(*data.frames)
    assert ids(Frame.nexp != 1) == expect(three, five)
    assert ids(Frame.nexp > 3) == expect(five)
    assert ids(Frame.nexp >= 3) == expect(three, five)
    assert ids(Frame.nexp < 5) == expect(*data.frames, three)
    assert ids(Frame.nexp <= 0) == []


def test_object_id_comparisons(db, data):
    middle = data.raws[3].object_id
    everything = ids(Frame.all())
    assert ids(Frame.object_id == middle) == [middle]
    assert ids(Frame.object_id > middle) == [i for i in everything if i > middle]
    assert ids(Frame.object_id <= middle) == [i for i in everything if i <= middle]


def test_str_comparisons(db, data):
    ccd50, ccd51 = data.chips
    r, g = data.filters
    assert ids(Ccd.name == "ccd50") == expect(ccd50)
    assert ids(Ccd.name != "ccd50") == expect(ccd51)
    assert ids(Ccd.name < "ccd51") == expect(ccd50)
    assert ids(Ccd.name <= "ccd51") == expect(ccd50, ccd51)
    assert ids(Ccd.name > "ccd50") == expect(ccd51)
    assert ids(Ccd.name >= "ccd50") == expect(ccd50, ccd51)
    assert ids(Filter.name > "h") == expect(r)
    assert ids(Frame.object_name == "field1") == expect(*data.raws[4:], data.calibrated)
    assert ids(Frame.object_name == "flat") == []  # case matters


def test_bool_equality(db, data):
    dark = Frame(is_dark=True)
    dark.commit()
    assert ids(Frame.is_dark == True) == expect(dark)  # noqa: E712
    assert ids(Frame.is_dark == False) == expect(*data.frames)  # noqa: E712
    assert ids(Frame.is_dark != True) == expect(*data.frames)  # noqa: E712
    assert ids(Frame.is_dark != False) == expect(dark)  # noqa: E712
    assert ids(Frame.is_dark.is_in([True])) == expect(dark)


def test_bool_order_comparisons(db, data):
    # As in Python, False < True.
    dark = Frame(is_dark=True)
    dark.commit()
    assert ids(Frame.is_dark > False) == expect(dark)
    assert ids(Frame.is_dark >= True) == expect(dark)
    assert ids(Frame.is_dark < True) == expect(*data.frames)
    assert ids(Frame.is_dark <= False) == expect(*data.frames)


def test_datetime_comparisons_with_naive_utc(db, data):
    raws, reduced = data.raws, data.reduced
    assert ids(Frame.date_obs == minute(3)) == expect(raws[3], reduced[3])
    assert ids(Frame.date_obs != minute(3)) == expect(*raws[:3], *raws[4:], *reduced[:3])
    assert ids(Frame.date_obs < minute(2)) == expect(raws[0], raws[1], reduced[0], reduced[1])
    assert ids(Frame.date_obs <= minute(1)) == expect(raws[0], raws[1], reduced[0], reduced[1])
    assert ids(Frame.date_obs > minute(5)) == expect(raws[6], raws[7])
    assert ids(Frame.date_obs >= minute(5)) == expect(raws[5], raws[6], raws[7])


def test_datetime_comparisons_with_aware_values_compare_the_instant(db, data):
    raws, reduced = data.raws, data.reduced
    at_3_in_utc_plus_2 = minute(3).replace(tzinfo=datetime.timezone.utc).astimezone(UTC_PLUS_2)
    assert at_3_in_utc_plus_2.hour == 22
    assert ids(Frame.date_obs == at_3_in_utc_plus_2) == expect(raws[3], reduced[3])
    assert ids(Frame.date_obs > at_3_in_utc_plus_2) == expect(*raws[4:])
    assert ids(Frame.date_obs < minute(1).replace(tzinfo=datetime.timezone.utc)) == expect(
        raws[0], reduced[0])
    # The same wall-clock time in UTC+2 is two hours earlier: before the whole night.
    assert ids(Frame.date_obs < minute(3).replace(tzinfo=UTC_PLUS_2)) == []
    assert ids(Frame.date_obs.is_in([at_3_in_utc_plus_2])) == expect(raws[3], reduced[3])


def test_aware_datetime_stored_is_found_by_naive_utc(db):
    frame = Frame(date_obs=datetime.datetime(2026, 3, 2, 1, 30, tzinfo=UTC_PLUS_2))
    frame.commit()
    assert ids(Frame.date_obs == datetime.datetime(2026, 3, 1, 23, 30)) == expect(frame)


def test_comparisons_never_match_missing_values(db, data):
    # flat and calibrated have no date_obs: neither == nor != nor < matches them.
    dated = [f for f in data.frames if f.date_obs is not None]
    assert ids((Frame.date_obs < minute(100)) | (Frame.date_obs >= minute(100))) == expect(*dated)
    assert data.flat.object_id not in ids(Frame.date_obs != minute(0))


# -- paths through references ---------------------------------------------------------------

def test_path_through_one_reference(db, data):
    raws, reduced, flat = data.raws, data.reduced, data.flat
    assert ids(Frame.chip.name == "ccd50") == expect(flat, *raws[::2], reduced[0], reduced[2])
    assert ids(ReducedFrame.chip.name == "ccd50") == expect(reduced[0], reduced[2])
    assert ids(ReducedFrame.chip.name == "ccd51") == expect(reduced[1], reduced[3],
                                                            data.calibrated)
    assert ids(Frame.imstat.stdev > 10.0) == expect(flat, raws[6], raws[7])
    assert ids(Frame.filter.name == "g") == expect(
        raws[2], raws[3], raws[6], raws[7], reduced[2], reduced[3], data.calibrated)


def test_path_through_two_references(db, data):
    other_flat = Frame(imstat=ImageStatistics(stdev=50.0), chip=data.chips[1])
    with_other_flat = ReducedFrame(flat=other_flat)
    flat_without_imstat = ReducedFrame(flat=Frame())
    without_flat = ReducedFrame()
    commit_all([with_other_flat, flat_without_imstat, without_flat])
    night_reduced = [*data.reduced, data.calibrated]
    assert ids(ReducedFrame.flat.imstat.stdev > 100) == expect(*night_reduced)
    assert ids(ReducedFrame.flat.imstat.stdev < 100) == expect(with_other_flat)
    assert ids(ReducedFrame.flat.chip.name == "ccd51") == expect(with_other_flat)
    assert ids(ReducedFrame.flat.chip.name == "ccd50") == expect(*night_reduced)


def test_path_through_a_list_matches_if_any_element_matches(db, data):
    reduced, calibrated = data.reduced, data.calibrated
    no_inputs = ReducedFrame()
    no_inputs.commit()
    # reduced[i] has raws[i] and raws[i + 1] (exptime 10 (i + 1), 10 (i + 2)); calibrated
    # has raws[4:] (50 to 80).
    assert ids(ReducedFrame.raw_frames.exptime > 70) == expect(calibrated)
    assert ids(ReducedFrame.raw_frames.exptime > 40) == expect(reduced[3], calibrated)
    assert ids(ReducedFrame.raw_frames.exptime == 20) == expect(reduced[0], reduced[1])
    assert ids(ReducedFrame.raw_frames.exptime < 20) == expect(reduced[0])
    assert ids(ReducedFrame.raw_frames.exptime > 15) == expect(*reduced, calibrated)
    assert ids(ReducedFrame.raw_frames.object_id == data.raws[4].object_id) == expect(
        reduced[3], calibrated)


def test_path_through_a_list_and_a_reference(db, data):
    # raws[i].imstat.stdev is 5 + i; raws[6] and raws[7] only belong to calibrated.
    assert ids(ReducedFrame.raw_frames.imstat.stdev >= 11) == expect(data.calibrated)
    assert ids(ReducedFrame.raw_frames.imstat.stdev == 9) == expect(data.reduced[3],
                                                                     data.calibrated)
    # Every reduced frame has a raw frame on ccd50 (the even ones).
    assert ids(ReducedFrame.raw_frames.chip.name == "ccd50") == expect(*data.reduced,
                                                                         data.calibrated)


# -- &, |, ~ --------------------------------------------------------------------------------

def test_and(db, data):
    q = (Frame.chip.name == "ccd50") & (Frame.exptime > 30)
    assert ids(q) == expect(data.raws[4], data.raws[6])


def test_or(db, data):
    q = (Frame.exptime < 15) | (Frame.object_name == "FLAT")
    assert ids(q) == expect(data.flat, data.raws[0], data.reduced[0])


def test_and_or_nest(db, data):
    raws = data.raws
    q = ((Frame.exptime < 25) | (Frame.exptime > 65)) & (Frame.chip.name == "ccd51")
    assert ids(q) == expect(raws[1], raws[7], data.reduced[1], data.calibrated)


def test_invert_is_the_complement_within_the_class(db, data):
    q = Frame.exptime > 30
    assert ids(~q) == sorted(set(ids(Frame.all())) - set(ids(q)))
    assert ids(~(ReducedFrame.exptime > 30)) == expect(*data.reduced[:3])
    assert ids(~~q) == ids(q)


def test_invert_includes_objects_whose_reference_is_missing(db, data):
    chipless = Frame(exptime=1.0)
    chipless.commit()
    raws, reduced = data.raws, data.reduced
    assert ids(~(Frame.chip.name == "ccd50")) == expect(
        *raws[1::2], reduced[1], reduced[3], data.calibrated, chipless)


def test_invert_includes_objects_whose_value_is_missing(db, data):
    # flat and calibrated have no date_obs; calibrated has no imstat either.
    raws, reduced = data.raws, data.reduced
    assert ids(~(Frame.date_obs < minute(6))) == expect(data.flat, raws[6], raws[7],
                                                        data.calibrated)
    assert ids(~(Frame.imstat.stdev > 1)) == expect(*reduced, data.calibrated)


def test_invert_of_a_path_through_a_list(db, data):
    no_inputs = ReducedFrame()
    no_inputs.commit()
    assert ids(~(ReducedFrame.raw_frames.exptime > 40)) == expect(*data.reduced[:3], no_inputs)


def test_invert_of_everything_is_nothing(db, data):
    assert ids(~Frame.all()) == []
    assert ids(~(Frame.exptime.is_in([]))) == expect(*data.frames)


def test_invert_and_and_combine(db, data):
    q = ~(Frame.chip.name == "ccd50") & (Frame.exptime >= 40)
    assert ids(q) == expect(data.raws[3], data.raws[5], data.raws[7], data.reduced[3],
                            data.calibrated)


def test_combining_with_a_subclass_query_gives_the_subclass(db, data):
    reduced, calibrated = data.reduced, data.calibrated
    q = (Frame.exptime > 30) & (ReducedFrame.chip.name == "ccd51")
    assert q.cls is ReducedFrame
    assert ids(q) == expect(reduced[3], calibrated)
    assert all(isinstance(o, ReducedFrame) for o in q)
    flipped = (ReducedFrame.chip.name == "ccd51") & (Frame.exptime > 30)
    assert flipped.cls is ReducedFrame and ids(flipped) == ids(q)
    either = (Frame.exptime > 70) | (ReducedFrame.exptime < 15)
    assert either.cls is ReducedFrame
    assert ids(either) == expect(reduced[0], calibrated)  # raws[7] is not a ReducedFrame


def test_combining_with_an_unconditioned_query(db, data):
    night_reduced = [*data.reduced, data.calibrated]
    assert ids(Frame.all() & (ReducedFrame.exptime < 15)) == expect(data.reduced[0])
    assert ids(Frame.all() | (ReducedFrame.exptime < 15)) == expect(*night_reduced)
    assert ids((Frame.exptime < 15) & Frame.all()) == expect(data.flat, data.raws[0],
                                                            data.reduced[0])


def test_combining_unrelated_classes_fails(db, data):
    with pytest.raises(QueryError, match="unrelated"):
        (Ccd.name == "ccd50") & (Frame.exptime > 1)
    with pytest.raises(QueryError, match="Ccd.*Frame"):
        (Ccd.name == "ccd50") | (Frame.exptime > 1)
    with pytest.raises(QueryError):
        ReducedFrame.all() & Ccd.all()


def test_combining_with_a_non_query_fails(db):
    with pytest.raises(QueryError, match="&"):
        (Frame.exptime > 1) & True
    with pytest.raises(QueryError):
        (Frame.exptime > 1) | "exptime < 2"


def test_combining_a_sliced_query_fails(db):
    with pytest.raises(QueryError, match="slic"):
        Frame.all()[:3] & (Frame.exptime > 1)


# -- like -----------------------------------------------------------------------------------

def test_like_star_matches_any_text(db, data):
    everything_but_flat = [f for f in data.frames if f is not data.flat]
    assert ids(Frame.object_name.like("field*")) == expect(*everything_but_flat)
    assert ids(Frame.object_name.like("*1")) == expect(*data.raws[4:], data.calibrated)
    assert ids(Frame.object_name.like("*")) == expect(*data.frames)
    assert ids(Ccd.name.like("c*5*")) == expect(*data.chips)


def test_like_question_mark_matches_one_character(db, data):
    assert ids(Ccd.name.like("ccd5?")) == expect(*data.chips)
    assert ids(Ccd.name.like("ccd?")) == []
    assert ids(Ccd.name.like("ccd??")) == expect(*data.chips)
    assert ids(Ccd.name.like("ccd?1")) == expect(data.chips[1])


def test_like_without_wildcards_is_equality(db, data):
    assert ids(Ccd.name.like("ccd50")) == expect(data.chips[0])
    assert ids(Ccd.name.like("ccd5")) == []


def test_like_is_case_sensitive(db, data):
    assert ids(Ccd.name.like("CCD*")) == []
    assert ids(Ccd.name.like("Ccd5?")) == []
    assert ids(Frame.object_name.like("flat")) == []
    assert ids(Frame.object_name.like("F*")) == expect(data.flat)
    assert ids(Frame.object_name.like("FIELD*")) == []


def test_like_treats_sql_wildcards_in_the_pattern_literally(db):
    names = ["a_b", "axb", "50%", "50x", "a\\b", "ab"]
    frames = {name: Frame(object_name=name) for name in names}
    commit_all(frames.values())
    assert ids(Frame.object_name.like("a_b")) == expect(frames["a_b"])
    assert ids(Frame.object_name.like("50%")) == expect(frames["50%"])
    assert ids(Frame.object_name.like("a\\b")) == expect(frames["a\\b"])
    assert ids(Frame.object_name.like("a%")) == []
    # The shell wildcards still work next to them; '?' matches any one character.
    assert ids(Frame.object_name.like("a?b")) == expect(frames["a_b"], frames["axb"],
                                                        frames["a\\b"])
    assert ids(Frame.object_name.like("50*")) == expect(frames["50%"], frames["50x"])
    assert ids(Frame.object_name.like("*_*")) == expect(frames["a_b"])


def test_like_through_references(db, data):
    assert ids(Frame.chip.name.like("*51")) == expect(*data.raws[1::2], data.reduced[1],
                                                     data.reduced[3], data.calibrated)
    assert ids(ReducedFrame.raw_frames.object_name.like("*1")) == expect(data.reduced[3],
                                                                          data.calibrated)


def test_like_on_a_number_fails(db, data):
    with pytest.raises(QueryError, match="text"):
        list(Frame.exptime.like("1*"))


# -- is_in, is_null -------------------------------------------------------------------------

def test_is_in_values(db, data):
    raws = data.raws
    assert ids(Frame.exptime.is_in([10.0, 80.0])) == expect(raws[0], data.reduced[0], raws[7],
                                                             data.calibrated)
    assert ids(Ccd.name.is_in(["ccd51", "ccd99"])) == expect(data.chips[1])
    assert ids(Frame.date_obs.is_in([minute(6), minute(7)])) == expect(raws[6], raws[7])
    assert ids(Frame.exptime.is_in(x for x in (2.0,))) == expect(data.flat)
    assert ids(Frame.exptime.is_in([])) == []


def test_is_in_through_a_path(db, data):
    assert ids(Frame.imstat.stdev.is_in([5.0, 150.0])) == expect(data.raws[0], data.flat)
    assert ids(ReducedFrame.raw_frames.exptime.is_in([80.0])) == expect(data.calibrated)


def test_is_in_persistent_objects(db, data):
    ccd50, ccd51 = data.chips
    on_ccd50 = [f for f in data.frames if f.chip is ccd50]
    assert len(on_ccd50) == 7
    assert ids(Frame.chip.is_in([ccd50])) == expect(*on_ccd50)
    assert ids(Frame.chip.is_in([ccd50, ccd51])) == expect(*data.frames)
    assert ids(ReducedFrame.flat.is_in([data.flat])) == expect(*data.reduced, data.calibrated)


def test_is_in_with_none_also_matches_missing(db, data):
    chipless = Frame()
    chipless.commit()
    ccd51 = data.chips[1]
    on_ccd51 = [f for f in data.frames if f.chip is ccd51]
    assert ids(Frame.chip.is_in([ccd51, None])) == expect(*on_ccd51, chipless)
    assert ids(Frame.chip.is_in([None])) == expect(chipless)
    assert ids(Frame.date_obs.is_in([None, minute(0)])) == expect(
        data.flat, data.calibrated, chipless, data.raws[0], data.reduced[0])


def test_is_in_an_uncommitted_object_fails(db, data):
    with pytest.raises(QueryError, match="commit"):
        list(Frame.chip.is_in([data.chips[0], Ccd(name="new")]))


def test_is_null(db, data):
    chipless = Frame()
    chipless.commit()
    assert ids(Frame.chip.is_null()) == expect(chipless)
    assert ids(Frame.date_obs.is_null()) == expect(data.flat, data.calibrated, chipless)
    assert ids(Frame.imstat.is_null()) == expect(data.calibrated, chipless)
    assert ids(CalibratedFrame.zeropoint.is_null()) == []
    assert ids(~Frame.date_obs.is_null()) == expect(*data.raws, *data.reduced)


def test_is_null_through_a_path_matches_a_missing_reference(db, data):
    # is_null matches "objects whose value (or reference) is missing": a frame without a
    # chip has no chip name, as ~ and to_table (a masked entry) already treat it.
    chipless = Frame()
    chipless.commit()
    assert chipless.object_id in ids(~(Frame.chip.name == "ccd50"))
    assert ids(Frame.chip.name.is_null()) == expect(chipless)
    assert ids(Frame.chip.name.is_in(["ccd50", None])) == expect(
        *[f for f in data.frames if f.chip is data.chips[0]], chipless)
    # Every object has a value or has none.
    name = Frame.chip.name
    assert ids((name == "ccd50") | (name != "ccd50") | name.is_null()) == ids(Frame.all())


def test_is_null_on_a_list_of_references_fails(db):
    with pytest.raises(QueryError, match="list"):
        list(ReducedFrame.raw_frames.is_null())


# -- references compared with objects ----------------------------------------------------------

def test_reference_equals_object_compares_identity(db, data):
    ccd50, ccd51 = data.chips
    assert ids(Frame.chip == ccd50) == expect(*[f for f in data.frames if f.chip is ccd50])
    assert ids(Frame.chip == ccd51) == expect(*[f for f in data.frames if f.chip is ccd51])
    assert ids(ReducedFrame.flat == data.flat) == expect(*data.reduced, data.calibrated)


def test_reference_equals_a_loaded_copy(db, data):
    copy = Ccd(object_id=data.chips[0].object_id)
    assert copy is not data.chips[0]
    assert ids(Frame.chip == copy) == ids(Frame.chip == data.chips[0])


def test_reference_equals_an_object_id(db, data):
    ccd50 = data.chips[0]
    assert ids(Frame.chip == ccd50.object_id) == ids(Frame.chip == ccd50)


def test_reference_not_equal_to_object_skips_missing_references(db, data):
    chipless = Frame()
    chipless.commit()
    ccd50, ccd51 = data.chips
    assert ids(Frame.chip != ccd50) == ids(Frame.chip == ccd51)
    assert chipless.object_id not in ids(Frame.chip != ccd50)


def test_reference_equals_none_is_is_null(db, data):
    chipless = Frame()
    chipless.commit()
    assert ids(Frame.chip == None) == expect(chipless)  # noqa: E711
    assert ids(Frame.chip != None) == expect(*data.frames)  # noqa: E711
    assert ids(Frame.date_obs == None) == ids(Frame.date_obs.is_null())  # noqa: E711


def test_reference_equals_uncommitted_object_fails(db, data):
    with pytest.raises(QueryError, match="commit"):
        list(Frame.chip == Ccd(name="new"))


def test_reference_equals_object_of_another_class_fails(db, data):
    with pytest.raises(QueryError, match="Ccd"):
        list(Frame.chip == data.filters[0])


def test_reference_equals_a_value_fails(db, data):
    with pytest.raises(QueryError, match="reference"):
        list(Frame.chip == "ccd50")


def test_order_comparison_on_a_reference_fails(db, data):
    with pytest.raises(QueryError, match="=="):
        list(Frame.chip < data.chips[0])
    with pytest.raises(QueryError):
        list(Frame.chip >= data.chips[0].object_id)


def test_order_comparison_with_none_fails(db, data):
    with pytest.raises(QueryError, match="is_null"):
        list(Frame.date_obs > None)


def test_comparing_a_list_of_references_fails(db, data):
    with pytest.raises(QueryError, match="raw_frames"):
        list(ReducedFrame.raw_frames == data.raws[0])
    with pytest.raises(QueryError):
        list(ReducedFrame.raw_frames == [data.raws[0], data.raws[1]])
    with pytest.raises(QueryError):
        list(ReducedFrame.raw_frames.is_in([data.raws[0]]))


def test_comparing_a_list_of_scalars_fails(db, data):
    with pytest.raises(QueryError, match="dither_offsets"):
        list(Frame.dither_offsets == [1.0])


# -- inheritance ------------------------------------------------------------------------------

def test_base_class_query_returns_objects_as_their_own_class(db, data):
    loaded = {o.object_id: o for o in Frame.all()}
    assert sorted(loaded) == expect(*data.frames)
    for original in data.frames:
        assert type(loaded[original.object_id]) is type(original)
    assert type(loaded[data.calibrated.object_id]) is CalibratedFrame
    assert type(loaded[data.reduced[0].object_id]) is ReducedFrame
    assert type(loaded[data.raws[0].object_id]) is Frame


def test_base_class_query_loads_subclass_attributes(db, data):
    raw, calibrated = Frame.exptime == 80.0  # raws[7] and calibrated, in object_id order
    assert (type(raw), type(calibrated)) == (Frame, CalibratedFrame)
    assert calibrated is not data.calibrated
    assert calibrated.zeropoint == 25.1
    assert calibrated.is_valid == 1
    assert ids(calibrated.raw_frames) == ids(data.raws[4:])
    assert calibrated.flat.object_id == data.flat.object_id
    reduced = {o.object_id: o for o in Frame.all()}[data.reduced[2].object_id]
    assert type(reduced) is ReducedFrame
    assert ids(reduced.raw_frames) == ids(data.raws[2:4])
    assert reduced.flat.imstat.stdev == 150.0


def test_subclass_query_does_not_return_base_class_objects(db, data):
    assert ids(ReducedFrame.all()) == expect(*data.reduced, data.calibrated)
    assert ids(ReducedFrame.exptime > 0) == expect(*data.reduced, data.calibrated)
    assert ids(CalibratedFrame.all()) == expect(data.calibrated)
    assert ids(CalibratedFrame.exptime == 10.0) == []
    assert {type(o) for o in ReducedFrame.all()} == {ReducedFrame, CalibratedFrame}


def test_dbobject_query_returns_every_object_as_its_own_class(db, data):
    found = list(persistence.DBObject.all())
    assert len(found) == 2 + 2 + 14 + 13  # chips, filters, frames, image statistics
    assert ids(found) == sorted(ids(found))
    classes = [type(o).__name__ for o in found]
    assert (classes.count("Ccd"), classes.count("Filter"), classes.count("Frame"),
            classes.count("ReducedFrame"), classes.count("CalibratedFrame"),
            classes.count("ImageStatistics")) == (2, 2, 9, 4, 1, 13)


def test_subclass_attribute_condition(db, data):
    assert ids(CalibratedFrame.zeropoint > 25) == expect(data.calibrated)
    assert ids(ReducedFrame.is_valid == 1) == expect(*data.reduced, data.calibrated)


# -- laziness ---------------------------------------------------------------------------------

def test_building_a_query_issues_no_sql(db, data):
    with statements(db) as seen:
        q = ((ReducedFrame.flat.imstat.stdev > 100) & (Frame.chip == data.chips[0])
             | ~ReducedFrame.raw_frames.exptime.is_in([10.0, None])
             | ReducedFrame.object_name.like("field*") | ReducedFrame.date_obs.is_null())
        q = q.order_by("imstat.stdev", descending=True).user_only().project_only()[1:3]
        repr(q)
    assert seen == []
    with statements(db) as seen:
        result = list(q)
    assert len(seen) >= 1
    assert len(result) == 2


def test_query_runs_each_time_it_is_used(db, data):
    q = Ccd.name.like("ccd*")
    assert ids(q) == expect(*data.chips)
    extra = Ccd(name="ccd52")
    extra.commit()
    assert ids(q) == expect(*data.chips, extra)
    assert len(q) == 3


def test_counting_issues_one_statement(db, data):
    with statements(db) as seen:
        assert len(Frame.exptime > 30) == 7
    assert len(seen) == 1


# -- len, indexing, slicing -------------------------------------------------------------------

def test_len_and_count(db, data):
    assert len(Frame.all()) == Frame.all().count() == 14
    assert len(ReducedFrame.all()) == 5
    assert (Frame.exptime > 30).count() == len(list(Frame.exptime > 30)) == 7
    assert len(Frame.exptime > 1000) == 0
    assert len(Ccd.all()) == 2


def test_default_order_is_object_id_ascending(db, data):
    assert ids(Frame.all()) == expect(*data.frames)
    assert ids(Frame.all()) == sorted(ids(Frame.all()))


def test_indexing(db, data):
    q = Frame.exptime > 30
    expected = ids(list(q))
    assert len(expected) == 7
    assert q[0].object_id == expected[0]
    assert q[3].object_id == expected[3]
    assert q[6].object_id == expected[6]
    assert q[-1].object_id == expected[-1]
    assert q[-7].object_id == expected[0]


def test_indexing_out_of_range_fails(db, data):
    q = Frame.exptime > 30
    with pytest.raises(IndexError):
        q[7]
    with pytest.raises(IndexError):
        q[-8]
    with pytest.raises(IndexError):
        (Frame.exptime > 1000)[0]
    with pytest.raises(IndexError):
        (Frame.exptime > 1000)[-1]


def test_indexing_by_something_else_fails(db, data):
    with pytest.raises(TypeError):
        Frame.all()["exptime"]


@pytest.mark.parametrize("index", [
    slice(2, 5), slice(-2, None), slice(None, None, 2), slice(None, 3), slice(10, None),
    slice(None, -3), slice(-5, -2), slice(5, 2), slice(12, 40), slice(40, None),
    slice(1, None, 3), slice(-6, None, 2), slice(-100, 2),
], ids=str)
def test_slicing_matches_list_slicing(db, data, index):
    everything = ids(Frame.all())
    assert ids(Frame.all()[index]) == everything[index]


@pytest.mark.parametrize("index", [
    slice(None, None, -1), slice(5, 1, -1), slice(-1, 2, -1), slice(None, None, -3),
], ids=str)
def test_slicing_with_a_negative_step_matches_list_slicing(db, data, index):
    everything = ids(Frame.all())
    assert ids(Frame.all()[index]) == everything[index]


def test_slicing_a_slice(db, data):
    everything = ids(Frame.all())
    q = Frame.all()[2:10]
    assert len(q) == 8
    assert ids(q[1:3]) == everything[3:5]
    assert ids(q[5:]) == everything[7:10]
    assert ids(q[6:20]) == everything[8:10]
    assert ids(q[-2:]) == everything[8:10]
    assert q[-1].object_id == everything[9]
    assert q[0].object_id == everything[2]
    with pytest.raises(IndexError):
        q[8]
    assert ids(Frame.all()[2:][:3]) == everything[2:5]


def test_slicing_keeps_the_order(db, data):
    q = Frame.all().order_by("exptime", descending=True)
    ordered = ids(list(q))
    assert ids(q[:3]) == ordered[:3]
    assert ids(q[-2:]) == ordered[-2:]
    assert ids(q[::2]) == ordered[::2]
    assert q[-1].object_id == ordered[-1]


def test_order_by_after_slicing_sorts_the_slice_or_fails(db, data):
    # q[:3] is the first three frames; sorting it must not bring in other frames.
    # Refusing (like combining a sliced query) would be fine too.
    first_three = Frame.all()[:3]
    expected = by(list(first_three), lambda f: f.exptime, descending=True)
    try:
        got = ids(first_three.order_by("exptime", descending=True))
    except QueryError:
        return
    assert got == expected


def test_max_and_min_of_a_slice_are_among_its_objects_or_fail(db, data):
    first_three = Frame.all()[:3]
    members = list(first_three)
    try:
        largest, smallest = first_three.max("exptime"), first_three.min("imstat.stdev")
    except QueryError:
        return
    assert largest == max(members, key=lambda f: f.exptime)
    assert smallest == min(members, key=lambda f: f.imstat.stdev)


def test_invert_of_a_sliced_query_is_its_complement_or_fails(db, data):
    for q in (Frame.all()[:3], (Frame.exptime > 1)[:3]):
        try:
            got = ids(~q)
        except QueryError:
            continue
        assert got == sorted(set(ids(Frame.all())) - set(ids(q)))


def test_first(db, data):
    assert Frame.all().first().object_id == min(ids(data.frames))
    assert (Frame.exptime > 70).first().object_id == min(ids([data.raws[7], data.calibrated]))
    assert (Frame.exptime > 1000).first() is None
    assert Frame.all().order_by("exptime").first() == data.flat


# -- order_by, max, min -----------------------------------------------------------------------

def by(objects, key, descending=False):
    """The ids of ``objects`` sorted by ``key`` (None last), ties in object_id order."""
    present = [o for o in objects if key(o) is not None]
    missing = [o for o in objects if key(o) is None]
    present.sort(key=lambda o: o.object_id)
    present.sort(key=key, reverse=descending)  # stable: ties keep object_id order
    return ids(present) + expect(*missing)


def test_order_by_name(db, data):
    exptime = lambda f: f.exptime  # noqa: E731
    assert ids(Frame.all().order_by("exptime")) == by(data.frames, exptime)
    assert ids(Frame.all().order_by("exptime", descending=True)) == by(
        data.frames, exptime, descending=True)


def test_order_by_class_attribute(db, data):
    exptime = lambda f: f.exptime  # noqa: E731
    assert ids(Frame.all().order_by(Frame.exptime, descending=True)) == by(
        data.frames, exptime, descending=True)
    night_reduced = [*data.reduced, data.calibrated]
    # An attribute of a base class orders a subclass query.
    assert ids(ReducedFrame.all().order_by(Frame.exptime, descending=True)) == by(
        night_reduced, exptime, descending=True)
    assert ids(ReducedFrame.all().order_by(ReducedFrame.imstat.stdev, descending=True)) == by(
        night_reduced, lambda f: f.imstat.stdev if f.imstat else None, descending=True)


def test_order_by_dotted_path(db, data):
    stdev = lambda f: f.imstat.stdev if f.imstat else None  # noqa: E731
    assert ids(Frame.all().order_by("imstat.stdev")) == by(data.frames, stdev)
    assert ids(Frame.all().order_by("imstat.stdev", descending=True)) == by(
        data.frames, stdev, descending=True)
    flat_stdev = lambda f: f.flat.imstat.stdev  # noqa: E731
    other = ReducedFrame(flat=Frame(imstat=ImageStatistics(stdev=500.0)))
    other.commit()
    assert ids(ReducedFrame.all().order_by("flat.imstat.stdev", descending=True)) == by(
        [*data.reduced, data.calibrated, other], flat_stdev, descending=True)
    assert ids(ReducedFrame.all().order_by("flat.imstat.stdev"))[-1] == other.object_id


def test_order_by_several_attributes(db, data):
    key = lambda f: (f.chip.name, f.exptime)  # noqa: E731
    q = Frame.all().order_by("chip.name", "exptime")
    assert ids(q) == by(data.frames, key)


def test_missing_values_sort_last_in_both_directions(db, data):
    no_date = expect(data.flat, data.calibrated)
    up = ids(Frame.all().order_by("date_obs"))
    down = ids(Frame.all().order_by("date_obs", descending=True))
    assert up[-2:] == no_date
    assert down[-2:] == no_date
    date = lambda f: f.date_obs  # noqa: E731
    assert up == by(data.frames, date)
    assert down == by(data.frames, date, descending=True)
    # Missing along a path (calibrated has no imstat) also sorts last.
    assert ids(Frame.all().order_by("imstat.stdev"))[-1] == data.calibrated.object_id
    assert ids(Frame.all().order_by("imstat.stdev", descending=True))[-1] == (
        data.calibrated.object_id)


def test_order_by_keeps_conditions_and_survives_combining(db, data):
    q = (Frame.exptime > 30).order_by("exptime", descending=True)
    expected = by([f for f in data.frames if f.exptime > 30], lambda f: f.exptime,
                  descending=True)
    assert ids(q) == expected
    assert ids(q & (Frame.exptime < 1000)) == expected
    assert ids((Frame.exptime < 1000) & q) == expected


def test_max_and_min(db, data):
    raws, reduced = data.raws, data.reduced
    assert Frame.all().max("imstat.stdev") == data.flat
    assert Frame.all().min("imstat.stdev") == reduced[0]
    assert Frame.all().max("date_obs") == raws[7]  # missing dates are not the largest
    assert Frame.all().min("date_obs").object_id == min(ids([raws[0], reduced[0]]))
    assert Frame.all().max(Frame.exptime).object_id == min(ids([raws[7], data.calibrated]))
    assert Frame.all().min("exptime") == data.flat
    assert (Frame.chip.name == "ccd51").max("exptime").object_id == min(
        ids([raws[7], data.calibrated]))
    assert ReducedFrame.all().max("imstat.stdev") == reduced[3]
    assert (Frame.exptime > 1000).max("exptime") is None
    assert (Frame.exptime > 1000).min("exptime") is None


def test_max_returns_the_object_as_its_own_class(db, data):
    found = CalibratedFrame.all().max("zeropoint")
    assert type(found) is CalibratedFrame and found.zeropoint == 25.1
    found = Frame.all().order_by("exptime", "object_name").max("exptime")
    assert found.exptime == 80.0


def test_order_by_unknown_attribute_fails(db, data):
    with pytest.raises(UnknownAttributeError, match="exptime"):
        Frame.all().order_by("exptme")
    with pytest.raises(UnknownAttributeError, match="name"):
        Frame.all().order_by("chip.nmae")


def test_order_by_attribute_of_another_class_fails(db, data):
    with pytest.raises(QueryError, match="Ccd.name"):
        Frame.all().order_by(Ccd.name)
    with pytest.raises(QueryError):
        Frame.all().order_by(ReducedFrame.is_valid)


def test_order_by_a_list_of_references_fails(db, data):
    with pytest.raises(QueryError, match="raw_frames"):
        list(ReducedFrame.all().order_by("raw_frames.exptime"))


# -- user_only, project_only ------------------------------------------------------------------

@pytest.fixture
def owned(db):
    """Ccds committed by alice and bob in projects KIDS and VIKING, visible to every
    user; context bob/KIDS."""
    made = {}
    for user, project in [("alice", "KIDS"), ("bob", "KIDS"), ("bob", "VIKING"),
                          ("alice", "VIKING")]:
        db.context = persistence.Context(user=user, project=project, privileges=3)
        chip = Ccd(name=f"{user}-{project}")
        chip.commit()
        made[user, project] = chip
    db.context = persistence.Context(user="bob", project="KIDS")
    return made


def test_user_only(db, owned):
    assert ids(Ccd.all().user_only()) == expect(owned["bob", "KIDS"], owned["bob", "VIKING"])


def test_project_only(db, owned):
    assert ids(Ccd.all().project_only()) == expect(owned["alice", "KIDS"],
                                                    owned["bob", "KIDS"])


def test_user_only_and_project_only_together(db, owned):
    assert ids(Ccd.all().user_only().project_only()) == expect(owned["bob", "KIDS"])


def test_user_only_keeps_the_condition(db, owned):
    assert ids(Ccd.name.like("*VIKING").user_only()) == expect(owned["bob", "VIKING"])
    assert ids(Ccd.name.like("alice*").user_only()) == []


def test_user_only_follows_the_context(db, owned):
    db.context = persistence.Context(user="alice", project="VIKING")
    assert ids(Ccd.all().user_only()) == expect(owned["alice", "KIDS"],
                                                 owned["alice", "VIKING"])
    assert ids(Ccd.all().project_only()) == expect(owned["bob", "VIKING"],
                                                    owned["alice", "VIKING"])


def test_owner_and_project_are_queryable(db, owned):
    assert ids(Ccd.owner == "alice") == expect(owned["alice", "KIDS"], owned["alice", "VIKING"])
    assert ids(Ccd.project.like("V*")) == expect(owned["bob", "VIKING"],
                                                  owned["alice", "VIKING"])


def test_user_only_on_a_subclass_query(db):
    db.context = persistence.Context(user="alice", project="KIDS")
    mine = ReducedFrame(exptime=1.0)
    mine_plain = Frame(exptime=1.0)
    commit_all([mine, mine_plain])
    db.context = persistence.Context(user="bob", project="KIDS")
    theirs = ReducedFrame(exptime=1.0)
    theirs.commit()
    db.context = persistence.Context(user="alice", project="KIDS")
    assert ids((ReducedFrame.exptime == 1.0).user_only()) == expect(mine)
    assert ids((Frame.exptime == 1.0).user_only()) == expect(mine, mine_plain)


# -- to_table ---------------------------------------------------------------------------------

def test_to_table_columns_in_order_with_values(db, data):
    q = ReducedFrame.all()
    table = q.to_table("object_id", "chip.name", "imstat.stdev", "date_obs")
    night_reduced = [*data.reduced, data.calibrated]
    assert table.colnames == ["object_id", "chip.name", "imstat.stdev", "date_obs"]
    assert len(table) == 5
    assert list(table["object_id"]) == expect(*night_reduced)
    assert list(table["chip.name"]) == ["ccd50", "ccd51", "ccd50", "ccd51", "ccd51"]
    stdev = table["imstat.stdev"]
    assert list(stdev.mask) == [False, False, False, False, True]  # calibrated has no imstat
    assert list(stdev[:4]) == [r.imstat.stdev for r in data.reduced]
    assert [as_datetime(table["date_obs"][i]) for i in range(4)] == [minute(i) for i in range(4)]


def test_to_table_follows_the_query_order(db, data):
    q = (Frame.exptime > 30).order_by("exptime", descending=True)
    table = q.to_table("object_id", "exptime", Frame.chip.name)
    assert list(table["object_id"]) == ids(q)
    assert list(table["exptime"]) == sorted([f.exptime for f in data.frames if f.exptime > 30],
                                            reverse=True)
    assert table.colnames == ["object_id", "exptime", "chip.name"]


def test_to_table_masks_missing_values_along_a_path(db, data):
    chipless = Frame(exptime=1.0, imstat=ImageStatistics(stdev=3.0))
    chipless.commit()
    table = (Frame.exptime < 15).to_table("object_id", "chip.name", "chip", "imstat.stdev")
    # flat, raws[0], reduced[0], chipless
    assert list(table["object_id"]) == expect(data.flat, data.raws[0], data.reduced[0], chipless)
    assert list(table["chip.name"].mask) == [False, False, False, True]
    assert list(table["chip.name"][:3]) == ["ccd50"] * 3
    assert list(table["chip"].mask) == [False, False, False, True]
    assert list(table["chip"][:3]) == [data.chips[0].object_id] * 3  # references as ids
    assert list(table["imstat.stdev"]) == [150.0, 5.0, 0.1, 3.0]


def test_to_table_masks_missing_datetimes(db, data):
    table = ReducedFrame.all().to_table("object_id", "date_obs")
    # calibrated (the last row) has no date_obs: its entry is masked, like any missing value.
    # A Time column carries its own mask (np.ma.is_masked does not know Time).
    assert list(table["date_obs"].mask) == [False, False, False, False, True]
    assert table["date_obs"][0].datetime == data.reduced[0].date_obs


def test_to_table_masks_a_column_missing_everywhere(db, data):
    table = CalibratedFrame.all().to_table("object_id", "imstat.stdev")
    assert len(table) == 1
    assert np.ma.is_masked(table["imstat.stdev"][0])


def test_to_table_without_arguments_has_object_id_and_scalars(db, data):
    table = Frame.all().to_table()
    assert "object_id" in table.colnames and "exptime" in table.colnames
    assert "object_name" in table.colnames and "date_obs" in table.colnames
    assert "dither_offsets" not in table.colnames  # lists are not scalar columns
    assert list(table["object_id"]) == expect(*data.frames)
    by_id = {f.object_id: f.exptime for f in data.frames}
    assert list(table["exptime"]) == [by_id[i] for i in table["object_id"]]
    reduced_table = ReducedFrame.all().to_table()
    assert "is_valid" in reduced_table.colnames and "raw_frames" not in reduced_table.colnames


def test_to_table_of_an_empty_query(db, data):
    table = (Frame.exptime > 1000).to_table("object_id", "chip.name")
    assert len(table) == 0
    assert table.colnames == ["object_id", "chip.name"]


def test_to_table_with_unknown_attribute_fails(db, data):
    with pytest.raises(UnknownAttributeError, match="stdev"):
        Frame.all().to_table("object_id", "imstat.stdv")


# -- errors -----------------------------------------------------------------------------------

def test_unknown_attribute_fails(db):
    with pytest.raises(UnknownAttributeError) as info:
        Frame.no_such
    message = str(info.value)
    assert "Frame" in message and "'no_such'" in message
    assert isinstance(info.value, AttributeError)
    assert not hasattr(Frame, "no_such")


def test_misspelt_attribute_fails_with_the_close_match(db):
    with pytest.raises(UnknownAttributeError, match="did you mean exptime"):
        Frame.exptme


def test_unknown_attribute_along_a_path_fails(db):
    with pytest.raises(UnknownAttributeError) as info:
        Frame.chip.nmae
    message = str(info.value)
    assert "Ccd" in message and "'nmae'" in message
    assert "did you mean name" in message
    assert isinstance(info.value, AttributeError)
    assert getattr(Frame.chip, "nmae", None) is None


def test_attribute_of_a_scalar_fails(db):
    with pytest.raises(UnknownAttributeError, match="not a reference"):
        Frame.exptime.value
    with pytest.raises(UnknownAttributeError, match="Frame.chip.name"):
        Frame.chip.name.upper


def test_comparing_with_a_value_of_the_wrong_type_fails(db, data):
    with pytest.raises(AttributeTypeError) as info:
        list(Frame.exptime > "70")
    message = str(info.value)
    assert "Frame.exptime" in message and "float" in message
    assert isinstance(info.value, TypeError)


def test_comparing_with_a_value_of_the_wrong_type_along_a_path_fails(db, data):
    with pytest.raises(AttributeTypeError, match=r"ImageStatistics\.stdev.*float"):
        list(ReducedFrame.flat.imstat.stdev > "100")
    with pytest.raises(AttributeTypeError, match=r"Frame\.nexp.*int"):
        list(Frame.nexp == 1.5)
    with pytest.raises(AttributeTypeError, match=r"Frame\.date_obs.*datetime"):
        list(Frame.date_obs < "2026-03-01")
    with pytest.raises(AttributeTypeError, match=r"Ccd\.name.*str"):
        list(Ccd.name.is_in(["ccd50", 50]))
    with pytest.raises(AttributeTypeError, match=r"Frame\.exptime.*float"):
        list(Frame.exptime == True)  # noqa: E712  a bool is not a number here


def test_truth_value_of_a_query_fails(db):
    q1, q2 = Frame.exptime > 1, Frame.exptime < 100
    with pytest.raises(TypeError, match="&"):
        bool(q1)
    with pytest.raises(TypeError, match="&"):
        if q1:
            pass
    with pytest.raises(TypeError, match="&"):
        q1 and q2  # noqa: B018
    with pytest.raises(TypeError, match="&"):
        not q1  # noqa: B018


def test_chained_comparison_fails(db):
    with pytest.raises(TypeError, match="&"):
        1 < Frame.exptime < 100  # noqa: B018


def test_truth_value_of_an_attribute_fails(db):
    with pytest.raises(TypeError, match="compare"):
        bool(Frame.exptime)


def test_iterating_an_attribute_fails(db):
    with pytest.raises(TypeError, match="not a list"):
        list(Frame.exptime)


def test_query_repr_describes_the_condition(db):
    q = (Frame.exptime > 30) & ~(Frame.chip.name.like("ccd5*"))
    text = repr(q)
    assert "Frame" in text and "exptime > 30" in text and "chip.name.like('ccd5*')" in text
    assert "~" in text and "&" in text
    assert repr(Frame.all()) == "<Query on Frame: all>"
    assert isinstance(q, Query)


# -- many queries at once ---------------------------------------------------------------

ASSORTED_QUERIES = {
    "scalar": lambda: Frame.exptime > 30,
    "not equal": lambda: Frame.object_name != "field0",
    "missing": lambda: Frame.date_obs == None,  # noqa: E711 (a query, not a test)
    "path": lambda: Frame.chip.name == "ccd51",
    "deep path": lambda: Frame.imstat.stdev <= 7.0,
    "reference": lambda: ReducedFrame.flat.is_null(),
    "list path": lambda: ReducedFrame.raw_frames.exptime >= 70,
    "like": lambda: Frame.object_name.like("field?"),
    "like literal %": lambda: Frame.object_name.like("FL%T"),
    "is_in": lambda: Frame.exptime.is_in([10.0, 40.0, None]),
    "and": lambda: (Frame.exptime > 10) & (Frame.chip.name == "ccd50"),
    "or": lambda: (Frame.exptime < 15) | (Frame.filter.name == "g"),
    "not": lambda: ~(Frame.chip.name == "ccd50"),
    "not missing": lambda: ~Frame.date_obs.is_null(),
    "everything": lambda: Frame.all(),
    "nothing": lambda: ~Frame.all(),
}


def test_fetch_together_gives_each_query_its_own_result_in_one_statement(db):
    night()
    queries = [ASSORTED_QUERIES[name]() for name in sorted(ASSORTED_QUERIES)
               if ASSORTED_QUERIES[name]().cls is Frame]
    with statements(db) as seen:
        results = persistence.fetch_together(queries)
    assert len(seen) == 1
    assert [ids(r) for r in results] == [ids(q) for q in queries]
    by_id = {}
    for result in results:
        for obj in result:
            assert by_id.setdefault(obj.object_id, obj) is obj, "each object made once"


def test_fetch_together_loads_references_of_all_results_together(db):
    night()
    queries = [Frame.chip.name == "ccd50", Frame.chip.name == "ccd51", Frame.exptime > 50]
    results = persistence.fetch_together(queries)
    with statements(db) as seen:
        names = [[f.chip.name for f in result] for result in results]
    assert len(seen) == 1
    assert set(names[0]) == {"ccd50"} and set(names[1]) == {"ccd51"}


def test_fetch_together_refuses_mixed_classes(db):
    with pytest.raises(QueryError, match="one class, not on Ccd, Frame"):
        persistence.fetch_together([Frame.exptime > 1, Ccd.name == "ccd50"])
