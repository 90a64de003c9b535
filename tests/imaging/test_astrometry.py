"""Astrometric calibration against known truth: seeded synthetic star fields with a TAN
(+SIP) WCS and a Moffat PSF (`tests.imaging.starfield`), header WCS off by 20-30″,
0.3-0.5° and 0.3-0.5%.

Tolerances: fitted-WCS positions of well-exposed (S/N > 50), unblended stars within
0.05″ rms of the truth; the WCS itself within 0.02″ of the truth everywhere a star
was; seeing within 5%.
"""

import numpy as np
import pytest
import sep
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS, Sip
from astropy.wcs.utils import fit_wcs_from_points
from scipy.spatial import cKDTree

from targets.imaging.astrometry import (
    pixels_near_image,
    AstrometryError, Matches, _measure, detect_sources, fit_wcs, match_to_reference, measure_background,
    seeing_fwhm, solve_astrometry)
from tests.imaging.starfield import make_starfield

QUADRATIC = (np.array([[0, 0, 1.2e-5], [0, -1.0e-5, 0], [1.5e-5, 0, 0]]),
             np.array([[0, 0, 1.2e-5], [0, 0.8e-5, 0], [-0.6e-5, 0, 0]]))
"""SIP A and B of a quadratic distortion, up to ~2.5 px in the corners of 768x768."""


def solve(field, **kwargs):
    return solve_astrometry(field.image, field.reference, field.wcs_guess, mask=field.mask,
                            weight=field.weight, saturation=field.saturation,
                            gain=field.gain, **kwargs)


def nearest_truth(field, sources):
    """Index of the true star nearest each source, and the distance in pixels."""
    tree = cKDTree(np.column_stack([field.truth["x"], field.truth["y"]]))
    distance, index = tree.query(np.column_stack([sources["x"], sources["y"]]))
    return index, distance


def sky_error(wcs, x, y, ra, dec):
    """Arcsec between ``wcs`` at pixels (x, y) and the true (ra, dec)."""
    fit_ra, fit_dec = wcs.all_pix2world(x, y, 0)
    dra = (fit_ra - ra) * np.cos(np.radians(dec)) * 3600.0
    return np.hypot(dra, (fit_dec - dec) * 3600.0)


@pytest.fixture(scope="module")
def field():
    return make_starfield(1)


@pytest.fixture(scope="module")
def solution(field):
    return solve(field)


def test_background_is_the_sky_whatever_the_byte_order(field):
    big_endian = field.image.astype(">f4")[:, ::-1][:, ::-1]  # FITS order, a view
    native = measure_background(field.image, field.mask)
    swapped = measure_background(big_endian, field.mask)
    np.testing.assert_allclose(swapped.level, native.level, rtol=1e-6)
    assert native.global_level == pytest.approx(200.0, abs=1.0)
    expected_rms = np.sqrt(200.0 * 1.5 + 25.0) / 1.5  # Poisson sky and read noise, ADU
    assert native.global_rms == pytest.approx(expected_rms, rel=0.05)  # + faint star light


def test_detect_sources_finds_the_stars_with_precise_centroids(field):
    before = field.image.copy()
    sources = detect_sources(field.image, field.mask, weight=field.weight,
                             saturation=field.saturation, gain=field.gain)
    np.testing.assert_array_equal(field.image, before)
    index, distance = nearest_truth(field, sources)
    bright = (sources["snr"] > 50) & (sources["flag"] == 0)
    assert bright.sum() > 100
    assert np.median(distance[bright]) < 0.03  # pixels
    ex = sources["x"][bright] - field.truth["x"][index[bright]]
    ey = sources["y"][bright] - field.truth["y"][index[bright]]
    assert abs(np.median(ex)) < 0.005 and abs(np.median(ey)) < 0.005  # unbiased
    # Stars well above the limit are found, but for the odd one blended with a brighter.
    flux_limit = np.sort(sources["flux_auto"][sources["snr"] > 20])[0]
    assert np.isin(np.flatnonzero(field.truth["flux"] > 2 * flux_limit), index).mean() > 0.97


def test_detect_sources_on_an_empty_image_fails():
    rng = np.random.default_rng(0)
    with pytest.raises(AstrometryError, match="no sources above"):
        detect_sources(rng.normal(100.0, 5.0, (128, 128)))


def test_seeing_is_the_psf_fwhm(field, solution):
    seeing = seeing_fwhm(solution.sources, solution.wcs)
    assert seeing.fwhm == pytest.approx(field.fwhm, rel=0.05)
    assert seeing.fwhm_arcsec == pytest.approx(field.fwhm * 0.25, rel=0.05)
    assert seeing.n_stars >= 20


def test_seeing_without_stars_fails(solution):
    with pytest.raises(AstrometryError, match="measured FWHM"):
        seeing_fwhm(solution.sources[:2])


def test_match_finds_the_header_pointing_error(field, solution):
    sources = solution.sources
    matches = match_to_reference(sources, field.reference, field.wcs_guess)
    index, distance = nearest_truth(field, sources)
    right = field.truth["reference_row"][index[matches.source_index]] == matches.reference_index
    assert len(matches) > 150
    assert right.mean() > 0.99
    # The guess points 20" east: the stars sit 80 px to the left of where it puts them.
    assert matches.shift == pytest.approx((-80.0, 0.0), abs=0.3)
    assert matches.rotation == pytest.approx(-0.3, abs=0.02)
    assert matches.scale == pytest.approx(1.003, abs=0.0005)


def test_solution_residuals_against_truth_are_below_50_mas(field, solution):
    sources = solution.sources
    index, distance = nearest_truth(field, sources)
    well_exposed = (sources["snr"] > 50) & (sources["flag"] == 0) & (distance < 1)
    error = sky_error(solution.wcs, sources["x"][well_exposed], sources["y"][well_exposed],
                      field.truth["ra"][index[well_exposed]],
                      field.truth["dec"][index[well_exposed]])
    assert well_exposed.sum() > 100
    assert np.sqrt(np.mean(error ** 2)) < 0.05
    # The WCS itself, at the true pixel positions of all stars.
    wcs_error = sky_error(solution.wcs, field.truth["x"], field.truth["y"],
                          field.truth["ra"], field.truth["dec"])
    assert wcs_error.max() < 0.02
    # What the solution reports: reference errors (0.02" per axis) plus centroids.
    assert 0.028 < solution.rms < 0.05
    assert solution.rms == pytest.approx(np.hypot(solution.rms_ra, solution.rms_dec))
    assert solution.n_stars > 150
    assert solution.n_stars <= solution.n_matched == len(solution.matches)
    assert solution.sip_degree == 0
    assert solution.wcs.wcs.ctype[0] == "RA---TAN" and solution.wcs.sip is None


def test_sip_is_fitted_when_the_field_is_distorted():
    field = make_starfield(5, sip=QUADRATIC)
    solution = solve(field)
    assert solution.sip_degree == 2
    assert solution.wcs.wcs.ctype[0] == "RA---TAN-SIP"
    error = sky_error(solution.wcs, field.truth["x"], field.truth["y"], field.truth["ra"],
                      field.truth["dec"])
    assert np.sqrt(np.mean(error ** 2)) < 0.01 and error.max() < 0.03
    # Without SIP the same data fit much worse, and world_to_pixel inverts the SIP.
    tan_only = solve(field, sip_degree=None)
    assert tan_only.rms > 2 * solution.rms
    x, y = solution.wcs.all_world2pix(field.truth["ra"], field.truth["dec"], 0)
    assert sky_error(solution.wcs, x, y, field.truth["ra"], field.truth["dec"]).max() < 1e-4
    assert np.hypot(x - field.truth["x"], y - field.truth["y"]).max() < 0.12  # 0.03"


def test_cubic_distortion_gets_a_cubic_sip():
    a, b = np.zeros((4, 4)), np.zeros((4, 4))
    a[3, 0], b[0, 3] = 2e-8, -2e-8  # odd: a quadratic SIP cannot absorb it
    field = make_starfield(6, sip=(a, b))
    solution = solve(field)
    assert solution.sip_degree == 3
    error = sky_error(solution.wcs, field.truth["x"], field.truth["y"], field.truth["ra"],
                      field.truth["dec"])
    assert np.sqrt(np.mean(error ** 2)) < 0.01


def test_large_pointing_rotation_and_scale_errors_are_recovered():
    field = make_starfield(7, offset=(-25.0, 15.0), rotation=-0.5, scale=-0.005)
    solution = solve(field)
    error = sky_error(solution.wcs, field.truth["x"], field.truth["y"], field.truth["ra"],
                      field.truth["dec"])
    assert error.max() < 0.02
    assert solution.n_stars > 150


def test_fit_agrees_with_astropy_fit_wcs_from_points(field, solution):
    used = solution.used
    s_idx = solution.matches.source_index[used]
    r_idx = solution.matches.reference_index[used]
    sources, reference = solution.sources, field.reference
    stars = SkyCoord(reference["ra"][r_idx], reference["dec"][r_idx], unit="deg")
    # fit_wcs_from_points' docstring asks for 1-based pixels, but astropy 8.0 evaluates
    # them with origin 0: 1-based input shifts its solution by one pixel. Pass 0-based.
    theirs = fit_wcs_from_points((np.asarray(sources["x"][s_idx]),
                                  np.asarray(sources["y"][s_idx])), stars)
    used_matches = type(solution.matches)(s_idx, r_idx, solution.matches.separation[used])
    ours = fit_wcs(sources, reference, used_matches, field.wcs_guess, sip_degree=None,
                   clip=1e6, error_floor=1.0)  # unweighted, no rejection: same problem
    gx, gy = np.meshgrid(np.linspace(0, 767, 9), np.linspace(0, 767, 9))
    ra, dec = theirs.all_pix2world(gx.ravel(), gy.ravel(), 0)
    assert sky_error(ours.wcs, gx.ravel(), gy.ravel(), ra, dec).max() < 0.002


def test_fit_is_exact_on_exact_positions(field):
    truth = field.truth
    exact = Table({"x": truth["x"], "y": truth["y"]})
    matches = Matches(np.arange(len(truth)), np.arange(len(truth)), np.zeros(len(truth)))
    solution = fit_wcs(exact, truth, matches, field.wcs_guess)
    assert solution.rms < 1e-5 and solution.sip_degree == 0
    np.testing.assert_allclose(solution.wcs.wcs.crval, field.wcs.wcs.crval, atol=1e-9)
    # CRPIX stays the guess's, so the CD matrix is the true one.
    np.testing.assert_allclose(solution.wcs.wcs.cd, field.wcs.wcs.cd, rtol=0, atol=1e-12)


def test_wrong_field_fails_and_says_what_to_check(field, solution):
    elsewhere = field.reference.copy()
    elsewhere["ra"] += 0.5  # half a degree away: no star near the field
    with pytest.raises(AstrometryError, match="reference catalogue") as info:
        match_to_reference(solution.sources, elsewhere, field.wcs_guess)
    assert isinstance(info.value, ValueError)
    # A catalogue of the right area but of other stars.
    rng = np.random.default_rng(3)
    scrambled = field.reference.copy()
    scrambled["ra"] += rng.uniform(-0.03, 0.03, len(scrambled))
    scrambled["dec"] += rng.uniform(-0.03, 0.03, len(scrambled))
    with pytest.raises(AstrometryError, match="search_radius"):
        match_to_reference(solution.sources, scrambled, field.wcs_guess)


def test_too_few_reference_stars_fails(field, solution):
    with pytest.raises(AstrometryError, match="at least 10"):
        match_to_reference(solution.sources, field.reference[:5], field.wcs_guess)
    with pytest.raises(AstrometryError, match="cannot constrain"):
        fit_wcs(solution.sources, field.reference,
                type(solution.matches)(solution.matches.source_index[:4],
                                       solution.matches.reference_index[:4],
                                       solution.matches.separation[:4]),
                field.wcs_guess)


def test_bad_sip_degree_fails(field, solution):
    with pytest.raises(ValueError, match="sip_degree"):
        fit_wcs(solution.sources, field.reference, solution.matches, field.wcs_guess,
                sip_degree="quadratic")


def test_saturated_stars_are_marked_and_left_out_of_the_fit():
    field = make_starfield(8, mag_range=(13.0, 22.5))
    solution = solve(field)
    sources = solution.sources
    index, distance = nearest_truth(field, sources)
    saturated_truth = np.asarray(field.truth["saturated"])[index] & (distance < 2)
    assert saturated_truth.sum() >= 10
    assert sources["saturated"][saturated_truth].all()
    fitted = solution.matches.source_index[solution.used]
    assert not sources["saturated"][fitted].any()
    error = sky_error(solution.wcs, field.truth["x"], field.truth["y"], field.truth["ra"],
                      field.truth["dec"])
    assert error.max() < 0.02


def test_sources_along_the_y_axis_are_measured():
    # sep gives such a source theta = float32(pi/2) > pi/2, which its aperture
    # functions refuse ("invalid aperture parameters"): seen on a simulated exposure.
    image = np.zeros((64, 64))
    image[20:37, 30] = 200.0
    objects = sep.extract(image, 5.0, err=1.0)
    assert objects["theta"][0] > np.pi / 2
    measured = _measure(image, np.zeros(image.shape, bool), np.ones(image.shape), 1.0,
                        objects)
    assert 0 < measured["flux_auto"][0] <= 17 * 200.0


def test_reference_stars_far_from_the_chip_do_not_break_the_distortion_inverse():
    """A cubic SIP fitted on a chip diverges a degree away, where astropy's inverse
    raises NoConvergence (a reference catalogue covering the whole mosaic made the
    calibration of a simulated night fail): far stars are NaN, near ones exact."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    wcs.wcs.crval, wcs.wcs.crpix = [101.6, -40.7], [512, 512]
    wcs.wcs.cd = np.array([[-0.25 / 3600, 0], [0, 0.25 / 3600]])
    a, b = np.zeros((4, 4)), np.zeros((4, 4))
    a[2, 0], a[0, 2], a[3, 0], b[0, 3], b[2, 1] = 2e-6, -1e-6, 1e-7, -1e-7, 1e-7
    wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    ra = 101.6 + np.array([0.0, 0.01, -0.03, 0.3, 1.0])
    dec = -40.7 + np.array([0.0, 0.01, 0.02, 0.3, 1.0])
    with pytest.raises(Exception, match="converge"):
        wcs.all_world2pix(ra, dec, 0)
    xy = pixels_near_image(wcs, ra, dec, (1024, 1024), margin=50)
    assert np.isnan(xy[3:]).all()
    near = np.column_stack(wcs.all_world2pix(ra[:3], dec[:3], 0))
    assert np.allclose(xy[:3], near, rtol=0, atol=1e-6)
    back = wcs.all_pix2world(xy[:3], 0)
    assert np.allclose(back, np.column_stack([ra[:3], dec[:3]]), rtol=0, atol=1e-9)
