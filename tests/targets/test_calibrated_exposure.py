"""CalibratedExposure of a simulated night: the whole chain from raw frames, checked
against the simulator's truth, on both databases."""

import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from targets import UP_TO_DATE
from targets.calibrated_exposure import MASK_BITS, CalibratedExposure
from targets.imaging.astrometry import measure_background
from targets.ingest import ingest
from targets.raw import RawScienceFrame


@pytest.fixture
def calibrated(store, simulated_night):
    """The night ingested, and the first science frame of ccd1 calibrated; its truth."""
    ingest(simulated_night.raw + [simulated_night.reference])
    raw = (RawScienceFrame.chip.name == "ccd1").first()
    product = CalibratedExposure.get(raw=raw)
    exposures = Table.read(os.path.join(simulated_night.truth, "exposures.ecsv"))
    row = exposures[(exposures["file"] == raw.raw_file) & (exposures["chip"] == "ccd1")][0]
    sources = Table.read(os.path.join(simulated_night.truth, "exposures", raw.raw_file),
                         hdu="SOURCES")
    with fits.open(os.path.join(simulated_night.truth, "chips", "ccd1.fits")) as chip:
        flat = chip[f"FLAT_{raw.filter.upper()}"].data.copy()
    return {"product": product, "raw": raw, "row": row, "flat": flat,
            "sources": sources[sources["chip"] == "ccd1"]}


def test_astrometry_matches_the_true_positions(calibrated):
    product, sources = calibrated["product"], calibrated["sources"]
    assert product.n_reference_stars >= 20 and product.quality_flags == 0
    bright = sources[(sources["kind"] == "star") & ~sources["saturated"]
                     & (sources["mag"] < 20)]
    ra, dec = product.wcs().pixel_to_world_values(bright["x"], bright["y"])
    dra = (ra - bright["ra"]) * np.cos(np.radians(bright["dec"])) * 3600
    ddec = (dec - bright["dec"]) * 3600
    # Well-exposed stars: the solved WCS puts them within 0.05 arcsec rms of the truth.
    assert len(bright) >= 20
    assert np.sqrt(np.mean(dra ** 2 + ddec ** 2)) < 0.05


def test_zeropoint_and_seeing_match_the_truth(calibrated):
    product, row = calibrated["product"], calibrated["row"]
    # The truth's zeropoint is for frames divided by the true flat; ours are divided by
    # the flat normalised to its median, which moves the zeropoint by that median.
    expected = row["zeropoint"] + 2.5 * np.log10(np.median(calibrated["flat"]))
    assert product.zeropoint == pytest.approx(expected, abs=0.02)
    assert 0 < product.zeropoint_error < 0.05 and product.n_zeropoint_stars >= 50
    # Stars are drawn at pixel centres (not integrated over pixels): FWHM within 6%.
    assert product.seeing == pytest.approx(row["seeing"], rel=0.06)


def test_flat_fielded_sky_is_flat_and_bad_pixels_are_masked(calibrated):
    science, weight, mask = calibrated["product"].images()
    background = measure_background(science, mask != 0, box_size=64)
    level = background.level / np.median(background.level)
    assert np.std(level) < 0.005, "better than 0.5% rms"
    assert np.all(weight[mask != 0] == 0) and np.all(weight[mask == 0] > 0)
    # The raw frame's cosmic rays of more than a few sigma are masked.
    assert np.count_nonzero(mask & MASK_BITS["cosmic"]) >= calibrated["row"]["n_cosmic"]
    assert np.count_nonzero(mask & MASK_BITS["cold"]) > 0


def test_the_chain_is_up_to_date_and_lineage_reaches_the_raw_frames(calibrated):
    plan = CalibratedExposure.plan(raw=calibrated["raw"])
    assert {node.state for node in plan} == {UP_TO_DATE}
    assert len(plan.graph) == 5, "the exposure, its bias (shared), flat and pixel maps"
    assert {type(o).__name__ for o in calibrated["product"].lineage()} >= {
        "MasterBias", "MasterFlat", "HotPixelMap", "ColdPixelMap", "ReferenceCatalogue",
        "RawScienceFrame", "RawBiasFrame", "RawFlatFrame", "RawDarkFrame"}
    assert calibrated["product"].reproduce().identical
