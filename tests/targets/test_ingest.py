"""Ingest: raw files become one raw frame per chip, exactly as written; bad files are
reported and ingest nothing; on both databases."""

import os
import shutil
import warnings

import ccdproc
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning

from persistence import commit_all
from targets.imaging.ccd import fits_section
from targets.imaging.combine import MAD_TO_SIGMA
from targets.imaging.skymatch import separation_arcsec
from targets.ingest import ingest
from targets.raw import RawBiasFrame, RawDarkFrame, RawFlatFrame, RawFrame, RawScienceFrame
from targets.reference import ReferenceCatalogue

CCDPROC_FRAME = os.path.join(os.path.dirname(ccdproc.__file__), "tests", "data",
                             "a8280271.fits")


def test_a_night_ingests_one_frame_per_chip_with_its_header_values(store, simulated_night):
    report = ingest(simulated_night.raw)
    assert report.failed == [] and report.already == []
    truth = Table.read(os.path.join(simulated_night.truth, "exposures.ecsv"))
    assert len(report.ingested) == len(truth) == 2 * (10 + 3 + 2 * 7 + 4)
    assert len(RawBiasFrame.all()) == 20 and len(RawFlatFrame.all()) == 28
    assert len(RawDarkFrame.all()) == 6
    assert len(RawScienceFrame.all()) == 8
    detectors = Table.read(os.path.join(simulated_night.truth, "detectors.ecsv"))
    gains = dict(zip(detectors["chip"], detectors["gain"]))
    for frame in report.ingested:
        row = truth[(truth["file"] == frame.raw_file) & (truth["chip"] == frame.chip.name)][0]
        assert frame.OBSTYPE == row["obstype"]
        assert frame.exptime == pytest.approx(row["exptime"])
        assert frame.night == row["night"] == "2024-03-11"
        assert frame.gain == pytest.approx(gains[frame.chip.name])
        assert frame.filter == (row["filter"] if frame.OBSTYPE != "bias" else frame.filter)
        assert frame.chip.instrument == "SIMCAM" and frame.chip.timezone == "America/Santiago"
    bias = RawBiasFrame.all()[0]
    level = detectors[detectors["chip"] == bias.chip.name]["bias_level"][0]
    assert bias.median == pytest.approx(level, abs=5), "ADU, bias drift is a few ADU"


def test_pixels_are_kept_exactly_as_the_telescope_wrote_them(store, simulated_night):
    path = simulated_night.raw[0]
    frames = ingest([path]).ingested
    with fits.open(path, do_not_scale_image_data=True) as raw:
        for frame in frames:
            with fits.open(frame.retrieve(), do_not_scale_image_data=True) as kept:
                original = raw[frame.extension]
                assert kept[0].data.dtype == original.data.dtype
                assert np.array_equal(kept[0].data, original.data)
                assert kept[0].header["BZERO"] == original.header["BZERO"]
                assert kept[0].header["EXTNAME"] == frame.chip.name
                assert kept[0].header["IMAGETYP"] == raw[0].header["IMAGETYP"]


def test_image_statistics_are_numpys_of_the_scaled_data_section(store, simulated_night):
    """The statistics come from a histogram of the integer pixels: they must be exactly
    what numpy gives on the scaled data section, for biases, flats and science frames."""
    paths = [simulated_night.raw[0], simulated_night.raw[-1],
             next(p for p in simulated_night.raw if fits.getval(p, "IMAGETYP") == "FLAT")]
    for frame in ingest(paths).ingested:
        with fits.open(frame.retrieve()) as kept:  # scaled to float by astropy
            data = kept[0].data[fits_section(frame.data_section)].astype(np.float64)
        median = np.median(data)
        assert frame.median == median
        assert frame.stdev == pytest.approx(MAD_TO_SIGMA * np.median(np.abs(data - median)),
                                            rel=1e-12)
        assert frame.mean == pytest.approx(data.mean(), rel=1e-12)
        assert (frame.minimum, frame.maximum) == (data.min(), data.max())


def test_integer_statistics_match_numpy_for_every_layout():
    """Odd and even counts, negative values, a single value, a constant image."""
    from targets.ingest import _integer_median_and_mad

    rng = np.random.default_rng(5)
    arrays = [np.array([[7]], np.int16), np.full((3, 4), -2, np.int32),
              np.array([[1, 2], [3, 10]], np.uint16), np.array([[-5, 5]], np.int16)]
    arrays += [rng.integers(-40, 40, size=(n, 3)).astype(np.int16) for n in range(1, 30)]
    for data in arrays:
        median = np.median(data.astype(np.float64))
        assert _integer_median_and_mad(data, int(data.min())) == (
            median, np.median(np.abs(data - median))), data


def test_ingesting_again_is_a_no_op(store, simulated_night):
    first = ingest(simulated_night.raw[:3]).ingested
    again = ingest(simulated_night.raw[:3])
    assert again.ingested == [] and sorted(f.object_id for f in again.already) == sorted(
        f.object_id for f in first)
    assert len(RawFrame.all()) == len(first)


def test_science_frames_record_their_footprint_and_get_it_when_ingested_again(
        store, simulated_night):
    science = [p for p in simulated_night.raw if fits.getval(p, "IMAGETYP") == "OBJECT"]
    (frame, *_) = ingest(science[:1]).ingested
    # The corners by the telescope's WCS are the true ones, but for the pointing error
    # (3 arcsec rms per axis in the simulator).
    header = fits.getheader(os.path.join(simulated_night.truth, "exposures", frame.raw_file),
                            frame.extension)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # a header-only HDU
        true = WCS(header).pixel_to_world_values([-0.5, 1023.5], [-0.5, 1023.5])
    corners = np.reshape(frame.footprint, (-1, 2))
    offsets = separation_arcsec(corners[[0, 2], 0], corners[[0, 2], 1], *true)
    assert np.all(offsets < 15.0)
    assert frame.covers(*np.mean(corners, axis=0)) and not frame.covers(0.0, 0.0)
    # A frame ingested before footprints were recorded gets its footprint on ingest.
    frame.footprint = []
    commit_all([frame])
    (again,) = [f for f in ingest(science[:1]).already if f.object_id == frame.object_id]
    assert list(RawScienceFrame.load(again.object_id).footprint) == list(corners.ravel())


def test_a_different_file_under_an_ingested_name_is_refused(store, simulated_night, tmp_path):
    original = simulated_night.raw[0]
    ingest([original])
    impostor = tmp_path / os.path.basename(original)
    with fits.open(original) as hdul:
        hdul[1].data[5, 5] += 100
        hdul.writeto(impostor)
    report = ingest([impostor, simulated_night.raw[1]])
    assert len(report.failed) == 1 and report.failed[0][0] == str(impostor)
    assert "a different file was ingested as" in report.failed[0][1]
    assert "raw files are never replaced" in report.failed[0][1]
    assert len(report.ingested) == 2, "the other file of the call goes on"


def test_bad_files_are_reported_and_ingest_nothing(store, simulated_night, tmp_path):
    not_fits = tmp_path / "notes.fits"
    not_fits.write_text("observing log, not FITS")
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(open(simulated_night.raw[0], "rb").read()[:20000])
    no_exptime = tmp_path / "no-exptime.fits"
    with fits.open(simulated_night.raw[1]) as hdul:
        del hdul[0].header["EXPTIME"]
        hdul.writeto(no_exptime)
    report = ingest([not_fits, truncated, no_exptime, simulated_night.raw[2]])
    messages = dict(report.failed)
    assert set(messages) == {str(not_fits), str(truncated), str(no_exptime)}
    assert "not a readable FITS file" in messages[str(not_fits)]
    assert "truncated" in messages[str(truncated)]
    assert "EXPTIME" in messages[str(no_exptime)]
    assert len(report.ingested) == 2
    assert {f.raw_file for f in RawFrame.all()} == {os.path.basename(simulated_night.raw[2])}


def test_a_real_frame_from_another_telescope_ingests_through_the_generic_camera(store, tmp_path):
    path = tmp_path / "a8280271.fits"
    shutil.copy(CCDPROC_FRAME, path)
    [frame] = ingest([path]).ingested
    assert isinstance(frame, RawScienceFrame) and frame.instrument == "GENERIC"
    assert frame.exptime == pytest.approx(150.04) and frame.airmass == pytest.approx(1.176)
    assert frame.gain == 1.9 and frame.read_noise == 5.0
    assert frame.overscan_section == "[4:13,1:520]" and frame.data_section == "[17:528,1:520]"
    assert frame.date_obs.isoformat() == "2013-07-13T00:57:33"
    assert np.array_equal(fits.getdata(frame.retrieve()), fits.getdata(CCDPROC_FRAME))


def test_reference_catalogue_ingests_and_is_found_by_position(store, simulated_night):
    [catalogue] = ingest([simulated_night.reference]).ingested
    table = Table.read(simulated_night.reference)
    assert catalogue.n_stars == len(table) and set(catalogue.filters) >= {"g", "r"}
    ra, dec = float(np.median(table["ra"])), float(np.median(table["dec"]))
    assert ReferenceCatalogue.covering(ra, dec).first() == catalogue
    assert ReferenceCatalogue.covering(ra + 10, dec).first() is None
    assert ingest([simulated_night.reference]).already == [catalogue]
