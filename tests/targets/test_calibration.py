"""MasterBias, MasterFlat and the pixel maps of a simulated night, checked against the
simulator's truth, on both databases."""

import datetime
import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from targets import MakeError, MissingInputError, UP_TO_DATE
from targets.calibration import ColdPixelMap, HotPixelMap, MasterBias, MasterFlat
from targets.ingest import ingest
from targets.raw import RawBiasFrame, RawFlatFrame, RawScienceFrame

EVENING = datetime.datetime(2024, 3, 12, 0, 0)
"""UTC, in the simulated night of 2024-03-11 at La Silla (UTC-3)."""


@pytest.fixture
def calibrations(store, simulated_night):
    """The night's biases and flats, ingested; the truth of chip ccd1."""
    ingest([p for p in simulated_night.raw
            if fits.getval(p, "IMAGETYP") in ("BIAS", "DARK", "FLAT")])
    chip = RawBiasFrame.all()[0].chip
    detectors = Table.read(os.path.join(simulated_night.truth, "detectors.ecsv"))
    with fits.open(os.path.join(simulated_night.truth, "chips", f"{chip.name}.fits")) as truth:
        images = {hdu.name: hdu.data.copy() for hdu in truth[1:]}
    return {"chip": chip, "truth": detectors[detectors["chip"] == chip.name][0],
            "images": images}


def test_master_bias_matches_the_truth_to_the_read_noise(calibrations):
    chip, truth = calibrations["chip"], calibrations["truth"]
    bias = MasterBias.get(chip=chip, time=EVENING)
    assert bias.n_frames == 10 and bias.quality_flags == 0
    master = fits.getdata(bias.retrieve())
    true_bias = calibrations["images"]["BIAS"]
    nx = master.shape[1]
    # The truth as the reduction sees it: the data area minus each row's overscan level.
    expected = true_bias[:, :nx] - np.median(true_bias[:, nx:], axis=1)[:, None]
    difference = master - expected
    # The level: within read noise / (gain sqrt N) of the truth.
    sigma = truth["read_noise"] / (truth["gain"] * np.sqrt(10))
    assert abs(difference.mean()) < sigma
    # Per pixel the same, plus the noise of each row's overscan median (variance
    # pi/2 / 32 of a pixel's), less efficient by up to 15% because clipping at 3 sigma
    # from a scale estimated on 10 values (against cosmic rays) also drops good values.
    assert np.std(difference) == pytest.approx(sigma * np.sqrt(1 + np.pi / 2 / 32),
                                               rel=0.15)
    assert bias.read_noise == pytest.approx(truth["read_noise"], rel=0.05)


def test_master_flat_matches_the_true_flat(calibrations):
    chip = calibrations["chip"]
    flat = MasterFlat.get(chip=chip, filter="g", time=EVENING)
    assert flat.n_frames == 7 and flat.quality_flags == 0
    assert flat.bias == MasterBias.get(chip=chip, time=EVENING), "the night's master bias"
    true_flat = calibrations["images"]["FLAT_G"]
    good = calibrations["images"]["COLD"] == 0
    ratio = fits.getdata(flat.retrieve())[good] / (true_flat[good] / np.median(true_flat[good]))
    assert np.median(ratio) == pytest.approx(1, abs=1e-3)
    assert np.std(ratio) < 0.005, "pixel to pixel, better than 0.5% rms"


def test_cold_pixel_map_finds_the_true_cold_pixels(calibrations):
    cold = ColdPixelMap.get(chip=calibrations["chip"], filter="r", time=EVENING)
    found = fits.getdata(cold.retrieve()).astype(bool)
    true = calibrations["images"]["COLD"].astype(bool)
    assert (found & true).sum() >= 0.95 * true.sum()
    assert (found & ~true).sum() <= 0.0005 * true.size
    assert cold.n_cold == found.sum()
    plan = ColdPixelMap.plan(chip=calibrations["chip"], filter="r", time=EVENING)
    assert {node.state for node in plan} == {UP_TO_DATE}
    assert {type(o).__name__ for o in cold.lineage()} >= {
        "MasterFlat", "MasterBias", "RawFlatFrame", "RawBiasFrame"}


def test_verify_flags_a_read_noise_out_of_bounds(calibrations):
    bias = MasterBias.get(chip=calibrations["chip"], time=EVENING, pars={"max_read_noise": 1.0})
    assert bias.quality_flags == MasterBias.QUALITY_NOISE


def test_too_few_frames_makes_nothing_and_says_what_to_do(calibrations):
    with pytest.raises(MakeError, match=r"10 raw biases .* fewer than min_frames=12"):
        MasterBias.get(chip=calibrations["chip"], time=EVENING, pars={"min_frames": 12})
    assert len(MasterBias.all()) == 0


def test_a_night_without_flats_is_missing_input(calibrations):
    with pytest.raises(MissingInputError, match="no RawFlatFrame for raw_flats"):
        MasterFlat.get(chip=calibrations["chip"], filter="g", time=EVENING
                       + datetime.timedelta(days=3))
    assert len(MasterFlat.all()) == 0 and len(RawScienceFrame.all()) == 0
    assert len(RawFlatFrame.all()) == 28


def test_hot_pixel_map_finds_the_true_hot_pixels_in_the_darks(calibrations):
    hot = HotPixelMap.get(chip=calibrations["chip"], time=EVENING)
    assert len(hot.raw_darks) == 3
    found = fits.getdata(hot.retrieve()).astype(bool)
    true = calibrations["images"]["HOT"].astype(bool)
    assert (found & true).sum() >= 0.9 * true.sum()
    assert (found & ~true).sum() <= 0.0005 * true.size
