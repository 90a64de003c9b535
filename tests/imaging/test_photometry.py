"""Photometric calibration against known truth: seeded star fields with a Moffat PSF and a
zeropoint of 25.0 (mag of 1 ADU/s), reference magnitudes with 0.01-0.03 mag errors.

Tolerances: zeropoint within 0.02 mag of the truth with an error below 0.01 mag;
aperture correction within 0.005 mag of the Moffat profile's analytic value.
"""

import numpy as np
import pytest
from astropy.table import Table

from targets.imaging.astrometry import Matches, solve_astrometry
from targets.imaging.photometry import (
    PhotometryError, aperture_correction, instrumental_magnitude, zeropoint,
    zeropoint_from_matches)
from tests.imaging.starfield import make_starfield, moffat_alpha


@pytest.fixture(scope="module")
def field():
    """Stars from 13th magnitude: the brightest saturate."""
    return make_starfield(11, mag_range=(13.0, 22.5))


@pytest.fixture(scope="module")
def solution(field):
    return solve_astrometry(field.image, field.reference, field.wcs_guess, mask=field.mask,
                            weight=field.weight, saturation=field.saturation,
                            gain=field.gain)


def test_aperture_correction_is_the_moffat_encircled_energy(field, solution):
    correction = aperture_correction(field.image, solution.sources, mask=field.mask)
    alpha, beta = moffat_alpha(field.fwhm, 3.0), 3.0

    def enclosed(r):
        return 1.0 - (1.0 + (r / alpha) ** 2) ** (1.0 - beta)

    expected = -2.5 * np.log10(enclosed(correction.total_radius) / enclosed(correction.radius))
    assert correction.radius == pytest.approx(2 * field.fwhm, rel=0.05)
    assert correction.value == pytest.approx(expected, abs=0.005)
    assert 0 < correction.error < 0.005 and correction.n_stars >= 10


def test_zeropoint_is_within_002_mag_of_the_truth(field, solution):
    sources = solution.sources
    correction = aperture_correction(field.image, sources, mask=field.mask)
    zp = zeropoint_from_matches(sources, field.reference, solution.matches, mag_column="r",
                                exptime=field.exptime, aperture_correction=correction)
    assert zp.value == pytest.approx(field.zeropoint, abs=0.02)
    assert 0.001 < zp.error < 0.01
    assert zp.n_stars > 50
    assert 0.01 < zp.rms < 0.08  # reference errors 0.01-0.03 plus photon noise
    # Saturated stars were matched but not used.
    saturated = np.asarray(sources["saturated"])[solution.matches.source_index]
    assert saturated.sum() >= 5
    assert not zp.used[saturated].any()


def test_saturated_stars_would_bias_the_zeropoint(field, solution):
    """Why they are excluded: their clipped cores lose flux."""
    s_idx, r_idx = solution.matches.source_index, solution.matches.reference_index
    saturated = np.asarray(solution.sources["saturated"])[s_idx]
    zp_i = (field.reference["r"][r_idx]
            - instrumental_magnitude(solution.sources["flux_auto"][s_idx], field.exptime))
    assert np.nanmedian(zp_i[saturated]) < field.zeropoint - 0.2


def test_zeropoint_is_exact_on_exact_fluxes():
    rng = np.random.default_rng(4)
    mag = rng.uniform(15, 20, 40)
    flux = 30.0 * 10 ** (-0.4 * (mag - 24.3))
    zp = zeropoint(flux, mag, np.full(40, 0.02), exptime=30.0, aperture_correction=0.0)
    assert zp.value == pytest.approx(24.3, abs=1e-9)
    assert zp.rms == pytest.approx(0.0, abs=1e-9)
    assert zp.n_stars == 40
    # The same fluxes in electrons (gain 2 e-/ADU): the zeropoint is per e-/s.
    assert zeropoint(2.0 * flux, mag, np.full(40, 0.02), exptime=30.0).value == pytest.approx(
        24.3 + 2.5 * np.log10(2.0), abs=1e-9)
    # An aperture correction of -0.05 mag makes the total stars brighter: zp - 0.05.
    assert zeropoint(flux, mag, np.full(40, 0.02), exptime=30.0,
                     aperture_correction=-0.05).value == pytest.approx(24.35, abs=1e-9)


def test_zeropoint_rejects_outliers_and_flagged_stars():
    rng = np.random.default_rng(5)
    mag = rng.uniform(15, 20, 60)
    err = np.full(60, 0.02)
    flux = 10.0 * 10 ** (-0.4 * (mag + rng.normal(0, 0.02, 60) - 25.0))
    flux[:5] *= 0.5  # blends or variables, 0.75 mag off
    usable = np.ones(60, bool)
    usable[5:8] = False
    zp = zeropoint(flux, mag, err, exptime=10.0, usable=usable)
    assert zp.value == pytest.approx(25.0, abs=0.015)
    assert not zp.used[:8].any() and zp.used[8:].sum() >= 50
    assert zp.error == pytest.approx(0.02 * np.sqrt(2) / np.sqrt(zp.n_stars), rel=0.5)


def test_zeropoint_with_too_few_stars_fails():
    with pytest.raises(PhotometryError, match="need 5") as info:
        zeropoint([100.0, 200.0, -5.0], [20.0, 19.3, 21.0], [0.02] * 3, exptime=10.0)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="exptime"):
        zeropoint([100.0] * 6, [20.0] * 6, [0.02] * 6, exptime=0)


def test_zeropoint_from_matches_needs_the_filter_columns(field, solution):
    with pytest.raises(ValueError, match="no column 'i'"):
        zeropoint_from_matches(solution.sources, field.reference, solution.matches,
                               mag_column="i", exptime=field.exptime)


def test_inputs_are_unchanged():
    flux = np.array([100.0, 200.0, 300.0, 400.0, 500.0, 600.0])
    mag = 25.0 - 2.5 * np.log10(flux)
    before = flux.copy(), mag.copy()
    zeropoint(flux, mag, np.full(6, 0.01), exptime=1.0)
    np.testing.assert_array_equal(flux, before[0])
    np.testing.assert_array_equal(mag, before[1])
    sources = Table({"x": [1.0], "y": [1.0], "flux": [1.0], "flux_err": [0.1]})
    matches = Matches(np.array([0]), np.array([0]), np.zeros(1))
    with pytest.raises(PhotometryError):  # one star; "r_err", the short suffix, works too
        zeropoint_from_matches(sources, Table({"r": [20.0], "r_err": [0.01]}), matches,
                               mag_column="r", exptime=1.0)
