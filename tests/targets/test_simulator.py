"""The simulator: reproducible from the seed, and its raw files agree with its truth."""

import filecmp
import glob
import json
import os

import numpy as np
import pytest
import sep
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from targets.instruments import Instrument, read_frames
from targets.simulator import DARK_EXPTIME, simulate, true_magnitudes

SIZE = (256, 256)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One small night: 4 chips of 256x256, 3 biases, 2 darks, one field in g and r, two
    dithers."""
    out = tmp_path_factory.mktemp("sim")
    return simulate(out, nights=1, chips=4, size=SIZE, seed=3, fields=1, dithers=2,
                    biases=3, darks=2, flats=2, star_density=60.0, galaxy_density=20.0)


def _frames(sim, obstype):
    rows = Table.read(os.path.join(sim.truth, "exposures.ecsv"))
    names = sorted(set(rows["file"][rows["obstype"] == obstype]))
    return [p for p in sim.raw if os.path.basename(p) in names], rows


def _chip_truth(sim, chip):
    with fits.open(os.path.join(sim.truth, "chips", f"{chip}.fits")) as hdul:
        return {h.name: h.data.copy() for h in hdul[1:]}


def _row(rows, path, chip):
    return rows[(rows["file"] == os.path.basename(path)) & (rows["chip"] == chip)][0]


def _cosmic_mask(sim, path, chip, shape):
    cosmics = Table.read(os.path.join(sim.truth, "exposures", os.path.basename(path)),
                         hdu="COSMICS")
    mask = np.zeros(shape, bool)
    mine = cosmics[cosmics["chip"] == chip]
    mask[mine["y"], mine["x"]] = True
    return mask


def _electrons(sim, path, chip, rows):
    """A chip's data in e-, with the true bias and this frame's drift removed."""
    truth = _chip_truth(sim, chip)
    row = _row(rows, path, chip)
    gain = _detector(sim, chip)["gain"]
    with fits.open(path) as hdul:
        raw = hdul[chip].data.astype(float)
    return (raw - truth["BIAS"] - row["bias_offset"])[:, :SIZE[0]] * gain, truth, row


def _detector(sim, chip):
    det = Table.read(os.path.join(sim.truth, "detectors.ecsv"))
    return det[det["chip"] == chip][0]


def test_layout_and_schedule(sim):
    assert len(sim.raw) == 3 + 2 + 2 * 2 + 1 * 2 * 2
    assert all(p.startswith(os.path.join(sim.out, "raw", "2024-03-11", "SIMCAM."))
               for p in sim.raw)
    for name in ("parameters.json", "detectors.ecsv", "catalogue.ecsv", "exposures.ecsv",
                 "chips/ccd1.fits", "chips/ccd4.fits"):
        assert os.path.isfile(os.path.join(sim.truth, name)), name
    assert os.path.isfile(sim.reference)
    assert json.load(open(os.path.join(sim.truth, "parameters.json")))["seed"] == 3
    assert not glob.glob(os.path.join(sim.out, "**", ".partial-*"), recursive=True)


def test_raw_files_read_by_simcam(sim):
    kinds = []
    for path in sim.raw:
        instrument, frames = read_frames(path)
        assert instrument.name == "SIMCAM"
        assert [f.detector for f in frames] == ["ccd1", "ccd2", "ccd3", "ccd4"]
        kinds.append(frames[0].obstype)
        with fits.open(path) as hdul:
            assert hdul[1].data.dtype == np.uint16  # BZERO = 32768
            assert hdul[1].header["BZERO"] == 32768
    assert kinds == ["bias"] * 3 + ["dark"] * 2 + ["flat"] * 4 + ["science"] * 4


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kwargs = dict(nights=1, chips=2, size=(64, 64), fields=1, dithers=1, biases=1, flats=1,
                  filters=("r",), star_density=30.0)
    one = simulate(tmp_path / "one", seed=7, **kwargs)
    two = simulate(tmp_path / "two", seed=7, **kwargs)
    three = simulate(tmp_path / "three", seed=8, **kwargs)
    files = sorted(os.path.relpath(p, tmp_path / "one")
                   for p in glob.glob(str(tmp_path / "one" / "**" / "*.*"), recursive=True))
    assert len(files) > 8
    for name in files:
        assert filecmp.cmp(tmp_path / "one" / name, tmp_path / "two" / name, shallow=False), name
    assert not filecmp.cmp(one.raw[-1], three.raw[-1], shallow=False)
    assert [os.path.basename(p) for p in one.raw] == [os.path.basename(p) for p in two.raw]


def test_existing_simulation_is_refused(sim):
    with pytest.raises(ValueError, match="already holds a simulation"):
        simulate(sim.out, size=(64, 64))


@pytest.mark.parametrize("kwargs, message", [
    (dict(size=(10, 10)), "from 64 to 8192"),
    (dict(chips=0), "chips"),
    (dict(filters=("z",)), "not SIMCAM's"),
])
def test_bad_arguments_fail(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate(tmp_path / "bad", **kwargs)
    assert not os.path.exists(tmp_path / "bad" / "raw")


def test_bias_matches_true_level_and_read_noise(sim):
    biases, rows = _frames(sim, "bias")
    for chip in ("ccd1", "ccd3"):
        det = _detector(sim, chip)
        residuals = []
        for path in biases:
            e, truth, row = _electrons(sim, path, chip, rows)
            good = ~_cosmic_mask(sim, path, chip, truth["BIAS"].shape)[:, :SIZE[0]]
            residuals.append(e[good] / det["gain"])
            with fits.open(path) as hdul:
                overscan = hdul[chip].data[:, SIZE[0]:].astype(float)
            # the overscan sits at the true level plus this frame's drift
            assert abs(np.median(overscan) - det["bias_level"] + np.mean(
                truth["BIAS"][:, :SIZE[0]]) - truth["BIAS"][0, -1] - row["bias_offset"]) < 1.0
        residual = np.concatenate(residuals)
        expected = np.hypot(det["read_noise"] / det["gain"], np.sqrt(1 / 12))  # + rounding
        # tolerance: mean within 5 standard errors, rms within 3 %
        assert abs(residual.mean()) < 5 * expected / np.sqrt(residual.size)
        assert residual.std() == pytest.approx(expected, rel=0.03)


def test_darks_hold_the_true_dark_current(sim):
    darks, rows = _frames(sim, "dark")
    truth = _chip_truth(sim, "ccd2")
    electrons = np.mean([_electrons(sim, path, "ccd2", rows)[0] for path in darks], axis=0)
    expected = truth["DARK"] * DARK_EXPTIME
    hot = truth["HOT"].astype(bool)
    # Hot pixels: their dark current, within 10% (Poisson and read noise are far less).
    assert np.median(electrons[hot] / expected[hot]) == pytest.approx(1, abs=0.1)
    assert np.median(electrons[hot]) > 20 * np.median(electrons[~hot] + 1)


def test_flats_carry_the_true_flat(sim):
    flats, rows = _frames(sim, "flat")
    for path in flats:
        with fits.open(path) as hdul:
            filter_name = hdul[0].header["FILTER"]
        for chip in ("ccd1", "ccd2"):
            e, truth, row = _electrons(sim, path, chip, rows)
            flat = truth[f"FLAT_{filter_name.upper()}"]
            bad = (truth["HOT"].astype(bool) | truth["COLD"].astype(bool)
                   | _cosmic_mask(sim, path, chip, truth["BIAS"].shape)[:, :SIZE[0]])
            ratio = e[~bad] / (row["lamp"] * flat[~bad])
            # Poisson noise of the lamp, and read noise: tolerance 0.1 % on the mean
            assert ratio.mean() == pytest.approx(1.0, abs=1e-3)
            expected = np.sqrt(1 / (row["lamp"] * flat[~bad].mean())
                               + (_detector(sim, chip)["read_noise"] / row["lamp"]) ** 2)
            assert ratio.std() == pytest.approx(expected, rel=0.1)
            # and it follows the flat's structure (vignetting, PRNU, dust) pixel by pixel
            assert np.corrcoef(e[~bad] / row["lamp"], flat[~bad])[0, 1] > 0.9


def test_stars_are_where_the_true_wcs_puts_them(sim):
    science, rows = _frames(sim, "science")
    offsets = []
    for path in science:
        truth_file = os.path.join(sim.truth, "exposures", os.path.basename(path))
        sources = Table.read(truth_file, hdu="SOURCES")
        for chip in ("ccd1", "ccd2", "ccd3", "ccd4"):
            e, truth, row = _electrons(sim, path, chip, rows)
            image = np.ascontiguousarray(e / truth[f"FLAT_{row['filter'].upper()}"].clip(0.3))
            image -= sep.Background(image).back()
            mine = sources[sources["chip"] == chip]
            x, y = np.asarray(mine["x"]), np.asarray(mine["y"])
            near = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
            np.fill_diagonal(near, np.inf)
            good = ((mine["kind"] == "star") & ~mine["saturated"]
                    & (mine["flux"] > 3e4) & (near.min(axis=1) > 15)
                    & (x > 15) & (x < SIZE[0] - 15) & (y > 15) & (y < SIZE[1] - 15))
            if not good.any():
                continue
            sigma = row["seeing"] / 0.25 / 2.355
            xw, yw, flag = sep.winpos(image, x[good], y[good], np.full(good.sum(), sigma))
            offsets.append(np.hypot(xw - x[good], yw - y[good])[flag == 0])
    offsets = np.concatenate(offsets)
    assert offsets.size >= 10
    # tolerance: 0.05 px for bright, isolated, unsaturated stars (sep windowed centroids)
    assert np.median(offsets) < 0.02
    assert np.percentile(offsets, 90) < 0.05


def test_header_wcs_is_off_by_the_pointing_error(sim):
    science, rows = _frames(sim, "science")
    for path in science:
        sources = Table.read(os.path.join(sim.truth, "exposures", os.path.basename(path)),
                             hdu="SOURCES")
        with fits.open(path) as hdul:
            for chip in ("ccd1", "ccd4"):
                header_wcs = WCS(hdul[chip].header)
                mine = sources[sources["chip"] == chip]
                ra, dec = header_wcs.all_pix2world(mine["x"], mine["y"], 0)
                east = ((ra - mine["ra"] + 180) % 360 - 180) * np.cos(np.radians(dec)) * 3600
                north = (dec - mine["dec"]) * 3600
                row = _row(rows, path, chip)
                # true minus header pointing; tolerance 0.2" for the rotation and scale errors
                assert np.median(east) == pytest.approx(-row["pointing_error_ra"], abs=0.2)
                assert np.median(north) == pytest.approx(-row["pointing_error_dec"], abs=0.2)
    errors = np.hypot(rows["pointing_error_ra"], rows["pointing_error_dec"])
    errors = errors[np.isfinite(errors)]
    assert 0.3 < np.median(errors) < 15.0  # arcsec: a few, as a telescope's


def test_cosmic_rays_are_in_the_raw_data(sim):
    science, rows = _frames(sim, "science")
    found = 0
    for path in science:
        cosmics = Table.read(os.path.join(sim.truth, "exposures", os.path.basename(path)),
                             hdu="COSMICS")
        for chip in ("ccd1", "ccd2", "ccd3", "ccd4"):
            mine = cosmics[cosmics["chip"] == chip]
            if not len(mine):
                continue
            e, truth, row = _electrons(sim, path, chip, rows)
            det = _detector(sim, chip)
            # each CR pixel holds at least its deposit, minus noise (or is saturated)
            values = e[mine["y"], mine["x"]]
            assert np.all((values > 0.8 * mine["electrons"])
                          | (values >= det["saturate"] - det["bias_level"] - 100))
            found += len(mine)
    assert found > 0


def test_reference_catalogue_errors_have_stated_scatter(sim):
    reference = Table.read(sim.reference)
    catalogue = Table.read(os.path.join(sim.truth, "catalogue.ecsv"))
    ref_ids = catalogue["ref_id"]
    ref_ids = ref_ids.filled("") if hasattr(ref_ids, "filled") else ref_ids  # masked: none
    matched = catalogue[ref_ids != ""]
    ref = {rid: k for k, rid in enumerate(reference["id"])}
    order = [ref[r] for r in matched["ref_id"]]
    reference = reference[order]
    assert len(reference) > 50
    assert set(reference.colnames) >= {"ra", "dec", "ra_error", "dec_error", "g", "g_error",
                                       "r", "r_error"}
    assert 0.02 <= reference["ra_error"].min() and reference["ra_error"].max() <= 0.05
    assert 0.01 <= reference["r_error"].min() and reference["r_error"].max() <= 0.03
    dra = ((reference["ra"] - matched["ra"]) * np.cos(np.radians(matched["dec"]))
           * 3600 / reference["ra_error"])
    ddec = (reference["dec"] - matched["dec"]) * 3600 / reference["dec_error"]
    dmag = (reference["r"] - matched["r"]) / reference["r_error"]
    tolerance = 4 / np.sqrt(2 * len(reference))  # ~4 standard errors of a sample rms
    for pulls in (dra, ddec, dmag):
        assert np.std(pulls) == pytest.approx(1.0, abs=tolerance)
        assert abs(np.mean(pulls)) < 4 / np.sqrt(len(reference))


def test_variables_and_transients_follow_their_light_curves(sim):
    catalogue = Table.read(os.path.join(sim.truth, "catalogue.ecsv"))
    kinds = set(catalogue["variability"])
    assert {"none", "periodic", "transient"} <= kinds
    epoch = catalogue.meta["epoch_mjd"]
    var = catalogue[catalogue["variability"] == "periodic"][:1]
    quarter = epoch + var["period"][0] * (0.25 - var["phase"][0])
    assert true_magnitudes(var, "r", quarter)[0] == pytest.approx(
        var["r"][0] + var["amplitude"][0])
    tr = catalogue[catalogue["variability"] == "transient"][:1]
    assert true_magnitudes(tr, "g", tr["t_start"][0] - 0.01)[0] == np.inf
    assert true_magnitudes(tr, "g", tr["t_start"][0] + 2)[0] == pytest.approx(
        tr["g"][0] + 2 * tr["decay"][0])
    # the rendered magnitudes are the light curves at mid-exposure
    science, rows = _frames(sim, "science")
    path = science[0]
    sources = Table.read(os.path.join(sim.truth, "exposures", os.path.basename(path)),
                         hdu="SOURCES")
    with fits.open(os.path.join(sim.truth, "exposures", os.path.basename(path))) as hdul:
        mjd, flt = hdul[0].header["MJD-MID"], hdul[0].header["FILTER"]
    index = {sid: k for k, sid in enumerate(catalogue["id"])}
    rows_ = [index[s] for s in sources["id"]]
    assert np.allclose(sources["mag"], true_magnitudes(catalogue[rows_], flt, mjd))


def test_zeropoint_relates_flux_and_magnitude(sim):
    science, rows = _frames(sim, "science")
    path = science[0]
    sources = Table.read(os.path.join(sim.truth, "exposures", os.path.basename(path)),
                         hdu="SOURCES")
    row = _row(rows, path, "ccd1")
    mags = row["zeropoint_e"] - 2.5 * np.log10(sources["flux"] / row["exptime"])
    assert np.allclose(mags, sources["mag"])
    assert row["zeropoint"] == pytest.approx(
        row["zeropoint_e"] - 2.5 * np.log10(_detector(sim, "ccd1")["gain"]))
    camera = Instrument.load("simcam")
    info = camera.filters[row["filter"]]
    expected = info["zeropoint"] - info["extinction"] * row["airmass"]
    assert row["zeropoint_e"] == pytest.approx(expected, abs=0.05)
