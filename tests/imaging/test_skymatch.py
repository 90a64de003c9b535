"""Zones, cones and the cross-match, against astropy's search_around_sky, across
RA 0/360 and at the poles."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, search_around_sky

from targets.imaging.skymatch import (crossmatch, footprint_contains, from_tangent_plane,
                                      ra_half_width, separation_arcsec, zone_of)


def _field(rng, ra0, dec0, half_width, n):
    """``n`` positions uniform on the sphere within ``half_width`` degrees of the
    field's declination, at any RA where the field reaches a pole."""
    low, high = max(dec0 - half_width, -90.0), min(dec0 + half_width, 90.0)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(low)),
                                           np.sin(np.radians(high)), n)))
    if abs(dec0) + half_width >= 90:
        ra = rng.uniform(0.0, 360.0, n)
    else:
        ra = (ra0 + rng.uniform(-half_width, half_width, n) / np.cos(np.radians(dec0))) % 360
    return ra, dec


@pytest.mark.parametrize("ra0, dec0, half_width", [
    (180.0, 0.0, 1.0),      # equator
    (0.0, 40.0, 1.0),       # straddling RA 0/360
    (359.9, -20.0, 0.2),    # the same, near the edge
    (0.0, 89.6, 0.4),       # the north pole
    (0.0, -89.8, 0.2),      # the south pole
])
def test_crossmatch_finds_exactly_astropys_pairs(ra0, dec0, half_width):
    rng = np.random.default_rng(7)
    ra1, dec1 = _field(rng, ra0, dec0, half_width, 20_000)
    # A perturbed copy plus unrelated positions: near pairs, far pairs and none.
    jitter = rng.normal(0.0, 1.5, (2, ra1.size)) / 3600.0
    dec2 = np.clip(dec1 + jitter[1], -90, 90)
    ra2 = (ra1 + jitter[0] / np.maximum(np.cos(np.radians(dec2)), 1e-3)) % 360
    extra_ra, extra_dec = _field(rng, ra0, dec0, half_width, 20_000)
    ra2, dec2 = np.concatenate([ra2, extra_ra]), np.concatenate([dec2, extra_dec])
    radius = 4.0
    i1, i2, sep = crossmatch(ra1, dec1, ra2, dec2, radius)
    c1, c2 = SkyCoord(ra1 * u.deg, dec1 * u.deg), SkyCoord(ra2 * u.deg, dec2 * u.deg)
    a, b, astro_sep, _ = search_around_sky(c1, c2, radius * u.arcsec)
    assert set(zip(i1.tolist(), i2.tolist())) == set(zip(a.tolist(), b.tolist()))
    assert len(i1) > ra1.size * 0.9
    np.testing.assert_allclose(sep, separation_arcsec(ra1[i1], dec1[i1], ra2[i2], dec2[i2]),
                               atol=1e-6)
    # Sorted by the first catalogue's row, then by separation.
    assert np.all(np.diff(i1) >= 0)
    same = np.diff(i1) == 0
    assert np.all(np.diff(sep)[same] >= 0)


def test_crossmatch_of_empty_catalogues_is_empty():
    i1, i2, sep = crossmatch([], [], [1.0], [2.0], 1.0)
    assert i1.size == i2.size == sep.size == 0


def test_zones_and_ra_half_widths():
    assert zone_of(-90.0) == 0 and zone_of(90.0) == 180 * 60
    assert zone_of(0.0) == 90 * 60
    assert ra_half_width(89.99, 0.1) == 180.0
    # A small cone at 60 degrees spans twice its radius in RA (1/cos 60).
    assert ra_half_width(60.0, 1 / 3600) == pytest.approx(2 / 3600, rel=1e-3)


@pytest.mark.parametrize("ra0, dec0", [(0.0, 0.0), (359.99, 45.0), (120.0, -89.9)])
def test_footprint_contains_with_margins(ra0, dec0):
    # A 0.1 x 0.06 degree footprint, rotated by 30 degrees, around (ra0, dec0).
    angle = np.radians(30.0)
    half = np.array([[-0.05, -0.03], [0.05, -0.03], [0.05, 0.03], [-0.05, 0.03]])
    rotated = half @ np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    corners = np.column_stack(from_tangent_plane(rotated[:, 0], rotated[:, 1], ra0, dec0))
    # Points along the short axis: inside, just inside, just outside, outside.
    along = np.array([0.0, 0.029, 0.031, 0.05])
    xi, eta = -along * np.sin(angle), along * np.cos(angle)
    ra, dec = from_tangent_plane(xi, eta, ra0, dec0)
    assert footprint_contains(corners, ra, dec).tolist() == [True, True, False, False]
    assert footprint_contains(corners, ra, dec, margin=0.002).tolist() == [True, True, True,
                                                                           False]
    assert footprint_contains(corners, ra, dec, margin=-0.002).tolist() == [True, False,
                                                                            False, False]
    # The corners' order (clockwise or not) does not matter.
    assert footprint_contains(corners[::-1], ra, dec).tolist() == [True, True, False, False]
