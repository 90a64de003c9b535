"""Named quality flags: verify() flags deliberately bad simulated calibrations, and not
those of a normal night, on both databases; every product class declares its flags."""

import datetime
import os

import numpy as np
import pytest
from astropy.io import fits

import targets
from targets import ProcessTarget, QualityFlag
from targets.calibration import ColdPixelMap, HotPixelMap, MasterBias, MasterFlat
from targets.ingest import ingest
from targets.quality import flags
from targets.raw import RawBiasFrame
from targets.simulator import simulate

EVENING = datetime.datetime(2024, 3, 12, 0, 0)
"""UTC, in the simulated night of 2024-03-11 at La Silla (UTC-3)."""

SMALL = dict(nights=1, chips=2, size=(256, 256), seed=5, fields=1, dithers=1,
             filters=("r",), biases=5, darks=2, flats=5)
"""A small night: two chips (the second with SIMCAM's one dead column), one filter."""

BIAS_DATA_OFFSET = 30.0
"""ADU between the raw biases' data area and their overscan in the faulty night: three
times MasterBias's max_level."""


@pytest.fixture(scope="module")
def normal_night(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("normal"), **SMALL)


@pytest.fixture(scope="module")
def offset_bias_night(tmp_path_factory):
    """The normal night, with its raw biases' data area off their overscan."""
    return simulate(tmp_path_factory.mktemp("offset-bias"), **SMALL,
                    bias_data_offset=BIAS_DATA_OFFSET)


@pytest.fixture(scope="module")
def damaged_night(tmp_path_factory):
    """The normal night, with two more dead columns on every chip."""
    return simulate(tmp_path_factory.mktemp("damaged"), **SMALL, extra_dead_columns=2)


def calibration_chips(night):
    """Ingest the night's biases, darks and flats; return the chips, in name order."""
    ingest([p for p in night.raw if fits.getval(p, "IMAGETYP") in ("BIAS", "DARK", "FLAT")])
    return sorted({frame.chip for frame in RawBiasFrame.all()}, key=lambda c: c.name)


def true_image(night, name, chip_name="ccd1"):
    """The simulator's true image ``name`` (``COLD``, ``FLAT_R``, ...) of a chip."""
    return fits.getdata(os.path.join(night.truth, "chips", f"{chip_name}.fits"), name)


def true_dead_columns(night, chip_name):
    """The columns the simulator made dead: cold over their whole length."""
    return np.flatnonzero(true_image(night, "COLD", chip_name).all(axis=0))


def test_a_simulated_fault_changes_only_what_it_names(normal_night, offset_bias_night,
                                                     damaged_night):
    def first(night, imagetyp):
        path = next(p for p in night.raw if fits.getval(p, "IMAGETYP") == imagetyp)
        return fits.getdata(path, "ccd1").astype(float)

    nx = SMALL["size"][0]
    shifted = first(offset_bias_night, "BIAS") - first(normal_night, "BIAS")
    assert np.all(shifted[:, nx:] == 0), "the overscan is the normal night's"
    assert np.abs(shifted[:, :nx] - BIAS_DATA_OFFSET).max() <= 1, "rounding to ADU"
    assert np.array_equal(first(offset_bias_night, "FLAT"), first(normal_night, "FLAT"))
    # The damaged chip's true flat is the normal one's but in the dead columns (its
    # raw frames' noise is drawn anew: a Poisson draw's use of the stream depends on
    # the mean).
    damaged = true_image(damaged_night, "FLAT_R") != true_image(normal_night, "FLAT_R")
    dead = true_dead_columns(damaged_night, "ccd1")
    assert np.array_equal(np.flatnonzero(damaged.any(axis=0)), dead) and len(dead) == 2


def test_a_fault_out_of_range_fails(tmp_path):
    with pytest.raises(ValueError, match="extra_dead_columns = 200: give a whole number "
                                         "from 0 to 128"):
        simulate(tmp_path, **SMALL, extra_dead_columns=200)
    with pytest.raises(ValueError, match="bias_data_offset = 'high': give a number of ADU"):
        simulate(tmp_path, **SMALL, bias_data_offset="high")


def test_a_normal_night_sets_no_flag_on_any_calibration(store, normal_night):
    for chip in calibration_chips(normal_night):
        products = [MasterBias.get(chip=chip, time=EVENING),
                    HotPixelMap.get(chip=chip, time=EVENING),
                    MasterFlat.get(chip=chip, filter="r", time=EVENING),
                    ColdPixelMap.get(chip=chip, filter="r", time=EVENING)]
        flagged = {f"{type(p).__name__} of {chip.name}": p.quality_flag_names()
                   for p in products if p.quality_flags}
        assert flagged == {}
        flat = products[2]
        assert flat.n_dead_columns == len(true_dead_columns(normal_night, chip.name))
    assert flat.n_dead_columns == 1, "ccd2 has SIMCAM's dead column, and passes"


def test_a_bias_off_its_overscan_is_flagged_level(store, offset_bias_night):
    for chip in calibration_chips(offset_bias_night):
        bias = MasterBias.get(chip=chip, time=EVENING)
        assert bias.level == pytest.approx(BIAS_DATA_OFFSET, abs=2.0)
        assert bias.quality_flag_names() == ["level"]
        assert bias.quality_flags == MasterBias.QUALITY_FLAGS["level"].bit


def test_a_flat_with_extra_dead_columns_is_flagged(store, damaged_night):
    chips = calibration_chips(damaged_night)
    flats = [MasterFlat.get(chip=chip, filter="r", time=EVENING) for chip in chips]
    for chip, flat in zip(chips, flats):
        assert flat.n_dead_columns == len(true_dead_columns(damaged_night, chip.name))
        assert "dead_columns" in flat.quality_flag_names()
        assert flat.bias.quality_flags == 0, "only the flats are damaged"
    assert flats[0].n_dead_columns == 2 and flats[0].quality_flag_names() == ["dead_columns"]
    tolerant = MasterFlat.get(chip=chips[0], filter="r", time=EVENING,
                              pars={"max_dead_columns": 2})
    assert tolerant.quality_flags == 0, "the threshold is a process parameter"


def test_flag_names_are_introspectable():
    assert list(MasterFlat.QUALITY_FLAGS) == ["outliers", "dead_columns"]
    dead = MasterFlat.QUALITY_FLAGS["dead_columns"]
    assert (dead.bit, dead.name) == (2, "dead_columns") and "max_dead_columns" in dead.doc
    assert MasterFlat.flag_names(0) == [] and MasterFlat.flag_names(None) == []
    assert MasterFlat.flag_names(3) == ["outliers", "dead_columns"]
    assert MasterFlat.flag_names(2 | 8 | 32) == ["dead_columns", "bit 8", "bit 32"]
    assert MasterFlat(quality_flags=1).quality_flag_names() == ["outliers"]
    assert MasterBias.QUALITY_NOISE == MasterBias.flag_bits(read_noise=True) == 2
    assert "dead_columns : bit 2" in MasterFlat.__doc__, "help() lists the flags"


def test_every_product_class_declares_flags_with_unique_bits():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    products = set(subclasses(ProcessTarget))
    assert {targets.Coadd, targets.SourceList, targets.NightReport} <= products
    for cls in products:
        declared = cls.QUALITY_FLAGS
        assert all(isinstance(f, QualityFlag) and f.name == name
                   for name, f in declared.items()), cls
        bits = [f.bit for f in declared.values()]
        assert len(set(bits)) == len(bits), cls


def test_clashing_or_malformed_flags_fails():
    with pytest.raises(ValueError, match="'level' .bit 1. and 'noise' .bit 1. clash"):
        flags(QualityFlag(1, "level", "a"), QualityFlag(1, "noise", "b"))
    with pytest.raises(ValueError, match="bit 3: give a power of two"):
        QualityFlag(3, "level", "a")
    with pytest.raises(KeyError, match="MasterBias declares no quality flag levle; its "
                                       "flags are: level, read_noise"):
        MasterBias.flag_bits(levle=True)
