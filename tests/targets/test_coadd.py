"""Coadds of a simulated field (five dithered exposures in r), on both databases: the
noise falls as the square root of the number of exposures, stars' fluxes match the
truth, regridded pixels agree with ``reproject``, and the coadd's sources are a source
list like any other."""

import datetime
import os

import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from reproject import reproject_interp

import dataserver
import targets
from targets import Coadd, MakeError, Source, SourceList
from targets.imaging.astrometry import measure_background
from targets.imaging.regrid import input_pixels
from targets.imaging.skymatch import crossmatch, separation_arcsec
from targets.ingest import ingest
from targets.raw import RawScienceFrame
from targets.simulator import simulate, true_magnitudes
from tests.conftest import empty_database

FIELD = dict(nights=1, chips=1, size=(1024, 1024), seed=31, fields=1, dithers=5,
             filters=("r",), biases=5, darks=3, flats=5, star_density=40.0)


@pytest.fixture(scope="module")
def field_raw(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("coadd"), **FIELD)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def field(request, tmp_path_factory, field_raw):
    """The field ingested, with the position and time range of its exposures."""
    workdir = tmp_path_factory.mktemp(f"coadd-{request.param}")
    with empty_database(request, request.param, workdir):
        targets.set_data_client(dataserver.Client(workdir / "files"))
        try:
            ingest(field_raw.raw + [field_raw.reference])
            frames = list(RawScienceFrame.all().order_by("date_obs"))
            centre = np.mean([np.reshape(f.footprint, (-1, 2)) for f in frames], axis=(0, 1))
            yield {"raw": field_raw, "frames": frames, "ra": float(centre[0]),
                   "dec": float(centre[1])}
        finally:
            targets.set_data_client(None)


def _coadd(field, n):
    """The coadd of the first ``n`` exposures."""
    frames = field["frames"]
    end = frames[n].date_obs if n < len(frames) else frames[-1].date_obs + datetime.timedelta(
        seconds=1)
    return Coadd.get(ra=field["ra"], dec=field["dec"], filter="r",
                     start=frames[0].date_obs, end=end)


def _sky_noise(coadd):
    """Measured and predicted noise of the sky where every exposure counts.

    The prediction is the weights' (each frame's median inverse variance there), with
    the variance bilinear interpolation removes from each frame: a pixel sampled at
    fractional offsets (fx, fy) from the input grid averages four input pixels with
    weights whose squares sum to (fx² + (1-fx)²)(fy² + (1-fy)²)."""
    data, _, _ = coadd.images()
    full = coadd.count() == coadd.n_frames
    measured = sigma_clipped_stats(data[full], sigma=3.0, maxiters=10)[2]
    weights, factors = [], []
    for frame in coadd.frames:
        part = frame.regridded()
        h, w = part.data.shape
        inside = full[frame.y0:frame.y0 + h, frame.x0:frame.x0 + w]
        weights.append(np.median(part.weight[inside & (part.weight > 0)]))
        x, y = input_pixels(frame.exposure.wcs(), frame.grid(), frame.x0, frame.y0, w, h)
        fx, fy = x[inside] % 1, y[inside] % 1
        factors.append(np.mean((fx ** 2 + (1 - fx) ** 2) * (fy ** 2 + (1 - fy) ** 2)))
    weights, factors = np.array(weights), np.array(factors)
    predicted = np.sqrt(np.sum(weights * factors)) / np.sum(weights)
    return measured, predicted


def test_a_coadd_stacks_every_exposure_covering_the_position(field):
    plan = Coadd.plan(ra=field["ra"], dec=field["dec"], filter="r",
                      start=field["frames"][0].date_obs,
                      end=field["frames"][-1].date_obs + datetime.timedelta(seconds=1))
    text = str(plan)
    assert text.count("RegriddedFrame") == 5 and text.count("CalibratedExposure") == 5
    coadd = _coadd(field, 5)
    assert coadd.n_frames == 5
    count = coadd.count()
    assert count.max() == 5 and count.min() == 0
    data, weight, mask = coadd.images()
    assert np.all((weight > 0) == (count > 0)) and np.all(mask == (count == 0))
    assert coadd.exptime == pytest.approx(5 * field["frames"][0].exptime)
    # The default grid covers every input at their own pixel scale, 0.25 arcsec.
    assert coadd.wcs().proj_plane_pixel_scales()[0].to("arcsec").value == pytest.approx(
        0.25, rel=1e-3)
    # ... and is no larger than that: the covered pixels reach to within the margin
    # (10 arcsec, 40 pixels, for the telescope's pointing error) of every side.
    rows, columns = np.flatnonzero(count.any(axis=1)), np.flatnonzero(count.any(axis=0))
    for covered, size in ((rows, count.shape[0]), (columns, count.shape[1])):
        assert covered[0] <= 42 + 16 and covered[-1] >= size - 1 - 42 - 16


def test_noise_falls_as_the_square_root_of_the_number_of_exposures(field):
    one, one_predicted = _sky_noise(_coadd(field, 1))
    five, five_predicted = _sky_noise(_coadd(field, 5))
    # Each is what the weights and the interpolation predict (the clipped standard
    # deviation of the sky also holds faint sources' light: a few per cent) ...
    assert one == pytest.approx(one_predicted, rel=0.08)
    assert five == pytest.approx(five_predicted, rel=0.08)
    # ... and the ratio is 1/sqrt(5) to the extent that the exposures are alike.
    assert five / one == pytest.approx(1 / np.sqrt(5), rel=0.2)


def test_the_coadds_stars_have_the_truths_fluxes(field):
    coadd = _coadd(field, 5)
    sources = SourceList.get(coadd=coadd)
    assert sources.coadd.object_id == coadd.object_id and sources.n_sources > 300
    table = sources.table()
    truth = Table.read(os.path.join(field["raw"].truth, "catalogue.ecsv"))
    stars = truth[(truth["kind"] == "star") & (truth["variability"] == "none")
                  & (truth["r"] > 17.0) & (truth["r"] < 20.5)]
    i_truth, i_source, _ = crossmatch(stars["ra"], stars["dec"], table["ra"], table["dec"],
                                      0.3)
    assert len(i_truth) > 100
    expected = 10 ** (-0.4 * (true_magnitudes(stars, "r", coadd.mjd)[i_truth] - 23.9))
    ratio = np.asarray(table["flux"])[i_source] / expected
    assert np.median(ratio) == pytest.approx(1.0, abs=0.02)
    # Sources are rows like any other list's.
    assert (Source.sourcelist == sources).count() == sources.n_sources


def test_regridded_pixels_agree_with_reproject(field):
    coadd = _coadd(field, 5)
    frame = coadd.frames[0]
    ours = frame.regridded()
    exposure = frame.exposure
    science, weight, mask = exposure.images()
    background = measure_background(science, mask != 0)
    image = np.where(mask != 0, np.nan, (science - background.level) * frame.flux_scale)
    wcs = frame.grid().wcs()[ours.y0:ours.y0 + ours.data.shape[0],
                             ours.x0:ours.x0 + ours.data.shape[1]]
    theirs, footprint = reproject_interp((image, exposure.wcs()), wcs,
                                         shape_out=ours.data.shape, order="bilinear")
    both = (ours.weight > 0) & (footprint > 0) & np.isfinite(theirs)
    assert both.mean() > 0.9
    noise = np.median(1 / np.sqrt(ours.weight[both]))
    difference = np.abs(ours.data[both] - theirs[both])
    # Same bilinear interpolation; ours also scales by the pixel area ratio (1 within
    # 0.1% here: same nominal scale, the solved one differs by the scale error).
    assert np.percentile(difference / (0.002 * np.abs(theirs[both]) + 0.01 * noise),
                         99.9) < 1.0


def test_a_coadd_of_a_named_field_is_centred_on_its_exposures(field):
    frames = field["frames"]
    coadd = Coadd.get(field=frames[0].object, filter="r", start=frames[0].date_obs,
                      end=frames[-1].date_obs + datetime.timedelta(seconds=1))
    assert coadd.n_frames == 5
    assert separation_arcsec(coadd.ra, coadd.dec, field["ra"], field["dec"]) < 1.0
    with pytest.raises(ValueError, match="no raw science frame of field 'M31' in r; the "
                                         f"fields ingested are: {frames[0].object}"):
        Coadd.plan(field="M31", filter="r", start=frames[0].date_obs,
                   end=frames[-1].date_obs)


def test_a_coadd_of_no_exposures_says_what_was_looked_for(field):
    with pytest.raises(MakeError, match="no raw science frame in r"):
        Coadd.get(ra=field["ra"], dec=field["dec"], filter="r",
                  start=datetime.datetime(2000, 1, 1), end=datetime.datetime(2000, 1, 2))
    assert (Coadd.start == datetime.datetime(2000, 1, 1)).count() == 0
