"""The association arithmetic: de Ruiter radius, one-to-one resolution, running sums."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from targets.imaging.association import (FluxSums, PositionSums, associate,
                                         de_ruiter_radius, variability_indices)
from targets.imaging.skymatch import from_tangent_plane, tangent_plane

ARCSEC = 1 / 3600


def catalogue(ra, dec, error=0.1):
    ra, dec = np.atleast_1d(np.asarray(ra, float)), np.atleast_1d(np.asarray(dec, float))
    return {"ra": ra % 360, "dec": dec, "ra_err": np.full(ra.size, error),
            "dec_err": np.full(ra.size, error)}


def test_de_ruiter_radius_is_the_offset_in_units_of_the_combined_error():
    # 0.3 arcsec east and 0.4 north of (359.9999, 45), errors 0.1 and 0.2 per source.
    ra0, dec0 = 359.9999, 45.0
    ra1, dec1 = from_tangent_plane(0.3 * ARCSEC, 0.4 * ARCSEC, ra0, dec0)
    r = de_ruiter_radius(ra0, dec0, 0.1, 0.1, ra1, dec1, 0.2, 0.2)
    assert r == pytest.approx(0.5 / np.sqrt(0.05), rel=1e-6)
    separation = SkyCoord(ra0, dec0, unit="deg").separation(SkyCoord(ra1, dec1, unit="deg"))
    assert separation.to(u.arcsec).value == pytest.approx(0.5, rel=1e-6)


def test_tangent_plane_round_trips_everywhere():
    rng = np.random.default_rng(1)
    ra0, dec0 = rng.uniform(0, 360, 500), rng.uniform(-90, 90, 500)
    xi, eta = rng.normal(0, 0.01, 500), rng.normal(0, 0.01, 500)
    ra, dec = from_tangent_plane(xi, eta, ra0, dec0)
    back = tangent_plane(ra, dec, ra0, dec0)
    assert np.allclose(back, (xi, eta), atol=1e-12)


def test_one_to_one_nearest_first():
    objects = catalogue([10.0, 10.0 + 0.5 * ARCSEC], [0.0, 0.0], error=0.2)
    # Three sources: two near the first object, one between both objects.
    sources = catalogue([10.0 + 0.05 * ARCSEC, 10.0 - 0.3 * ARCSEC, 10.0 + 0.3 * ARCSEC],
                        [0.0, 0.0, 0.0], error=0.2)
    matched, r = associate(objects, sources)
    assert matched.tolist() == [0, -1, 1]
    assert np.isnan(r[1]) and r[0] < r[2]


def test_equidistant_configurations_resolve_the_same_way_every_time():
    # A square of objects with a square of sources rotated by 45 degrees inside it:
    # every source is equidistant from two objects. Offsets are exact binary fractions.
    d = 2.0 ** -14
    objects = catalogue([20 - d, 20 + d, 20 + d, 20 - d], [-d, -d, d, d], error=0.3)
    sources = catalogue([20.0, 20 + d, 20.0, 20 - d], [-d, 0.0, d, 0.0], error=0.3)
    results = {tuple(associate(objects, sources)[0].tolist()) for _ in range(5)}
    assert len(results) == 1
    (matched,) = results
    taken = [m for m in matched if m >= 0]
    assert len(taken) == len(set(taken)) >= 3


@pytest.mark.parametrize("ra, dec", [(0.0, 0.0), (359.99999, -30.0), (45.0, 89.99999),
                                     (200.0, -89.99999)])
def test_association_across_ra_zero_and_at_the_poles(ra, dec):
    # 49 objects 2 arcsec apart around (ra, dec), every source moved by 0.07 arcsec.
    grid = (np.arange(7) - 3) * 2.0 * ARCSEC
    xi, eta = (v.ravel() for v in np.meshgrid(grid, grid))
    objects = catalogue(*from_tangent_plane(xi, eta, ra, dec), error=0.05)
    moved = catalogue(*from_tangent_plane(xi + 0.05 * ARCSEC, eta - 0.05 * ARCSEC, ra, dec),
                      error=0.05)
    matched, r = associate(objects, moved)
    assert matched.tolist() == list(range(49))
    # 0.05 arcsec in each axis with errors of 0.05 per source: r = 1.
    assert np.allclose(r, 1.0, atol=1e-4)


def test_empty_catalogues_and_bad_errors():
    empty = catalogue([], [])
    some = catalogue([1.0], [1.0])
    assert associate(empty, some)[0].tolist() == [-1]
    assert associate(some, empty)[0].tolist() == []
    with pytest.raises(ValueError, match="positive error"):
        associate(some, {**some, "ra_err": np.array([0.0])})


def test_running_sums_equal_batch_statistics_to_1e9():
    rng = np.random.default_rng(5)
    flux = rng.normal(5e4, 200.0, (30, 40))  # 30 epochs of 40 objects
    err = rng.uniform(50, 150, (30, 40))
    sums = FluxSums.start(flux[0], err[0])
    for k in range(1, 30):
        sums = sums.add(flux[k], err[k])
        mean, mean_err, v, eta = sums.statistics()
        for j in range(40):
            bv, beta = variability_indices(flux[:k + 1, j], err[:k + 1, j])
            assert v[j] == pytest.approx(bv, rel=1e-9)
            assert eta[j] == pytest.approx(beta, rel=1e-9)
    single = FluxSums.start([10.0], [1.0]).statistics()
    assert (single[2][0], single[3][0]) == (0.0, 0.0)


def test_position_sums_are_the_weighted_mean():
    ra0, dec0 = 359.99999, 60.0
    xi = np.array([0.0, 0.2, -0.1]) * ARCSEC
    eta = np.array([0.0, -0.3, 0.1]) * ARCSEC
    errors = np.array([0.1, 0.2, 0.05])
    ra, dec = from_tangent_plane(xi, eta, ra0, dec0)
    sums = PositionSums.start(ra[:1], dec[:1], errors[:1], errors[:1])
    for k in (1, 2):
        sums = sums.add(ra[k:k + 1], dec[k:k + 1], errors[k:k + 1], errors[k:k + 1])
    mean_ra, mean_dec, ra_err, _ = sums.position()
    w = 1 / errors ** 2
    expected = from_tangent_plane(np.sum(w * xi) / w.sum(), np.sum(w * eta) / w.sum(),
                                  ra0, dec0)
    assert mean_ra[0] == pytest.approx(expected[0], abs=1e-10)
    assert mean_dec[0] == pytest.approx(expected[1], abs=1e-10)
    assert ra_err[0] == pytest.approx(1 / np.sqrt(w.sum()))
