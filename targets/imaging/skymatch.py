"""Positions on the sphere: zones, cones and the cross-match of two catalogues.

The sky is cut into declination *zones* (Gray, Szalay et al. 2007, "Cross-matching
large astronomical catalogs with zones"): within a zone, a cone of radius ``r`` around
``(ra, dec)`` is a range of right ascension ``ra ± alpha(dec, r)``, so a sorted array
(in memory) or a B-tree index on ``(zone, ra)`` (in the database) finds its candidates
by range scans, and the exact test is a dot product of unit vectors. RA wraps at
0/360 and the poles are whole zones; nothing here needs a special case elsewhere.

All angles are degrees unless a name says ``arcsec``.
"""

import numpy as np

__all__ = ["ZONE_HEIGHT", "cone_mask", "crossmatch", "footprint_contains", "from_tangent_plane",
           "ra_half_width",
           "separation_arcsec", "tangent_plane", "unit_vectors", "zone_of"]

ZONE_HEIGHT = 1.0 / 60.0
"""Height of the database's zones, degrees (1 arcmin): a cone search of an image or of
a few arcseconds reads one to a few zones."""


def zone_of(dec, height=ZONE_HEIGHT):
    """The zone number of declination(s) ``dec``: 0 at the south pole."""
    top = int(np.floor(180.0 / height))
    return np.clip(np.floor((np.asarray(dec, dtype=np.float64) + 90.0) / height),
                   0, top).astype(np.int64)


def unit_vectors(ra, dec):
    """``(x, y, z)`` of positions on the unit sphere."""
    ra, dec = np.radians(np.asarray(ra, np.float64)), np.radians(np.asarray(dec, np.float64))
    cos_dec = np.cos(dec)
    return cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)


def ra_half_width(dec, radius):
    """Half the range of right ascension a cone of ``radius`` around declination
    ``dec`` spans: 180 where the cone reaches a pole."""
    dec, radius = np.asarray(dec, np.float64), np.asarray(radius, np.float64)
    reaches_pole = np.abs(dec) + radius >= 89.999999
    low, high = np.radians(dec - radius), np.radians(dec + radius)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.degrees(np.arctan(np.sin(np.radians(radius))
                                     / np.sqrt(np.abs(np.cos(low) * np.cos(high)))))
    return np.where(reaches_pole, 180.0, np.minimum(alpha, 180.0))


def separation_arcsec(ra1, dec1, ra2, dec2):
    """Angular separation (haversine, exact at any distance), arcsec."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, np.float64))
                            for v in (ra1, dec1, ra2, dec2))
    h = (np.sin((dec2 - dec1) / 2) ** 2
         + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))) * 3600.0


def cone_mask(ra, dec, ra0, dec0, radius):
    """Which of the positions lie within ``radius`` degrees of ``(ra0, dec0)``."""
    return separation_arcsec(ra, dec, ra0, dec0) <= radius * 3600.0


def tangent_plane(ra, dec, ra0, dec0):
    """Gnomonic (TAN) coordinates ``(xi, eta)`` of positions about ``(ra0, dec0)`` (one
    centre, or one per position), degrees: east and north offsets, exact across RA 0/360
    and at the poles. Positions 90 degrees or more away have no projection (NaN)."""
    ra, dec, ra0, dec0 = (np.radians(np.asarray(v, np.float64)) for v in (ra, dec, ra0, dec0))
    cos_c = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_c = np.where(cos_c > 0, cos_c, np.nan)
        xi = np.cos(dec) * np.sin(ra - ra0) / cos_c
        eta = (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / cos_c
    return np.degrees(xi), np.degrees(eta)


def from_tangent_plane(xi, eta, ra0, dec0):
    """Positions ``(ra, dec)`` of gnomonic offsets ``(xi, eta)`` about ``(ra0, dec0)``,
    degrees: the inverse of `tangent_plane`. Computed as the direction of the point
    ``p0 + xi e + eta n`` of the tangent plane (``e``, ``n``: east and north at
    ``p0``), so that it keeps its precision at the poles."""
    xi, eta, ra0, dec0 = (np.radians(np.asarray(v, np.float64)) for v in (xi, eta, ra0, dec0))
    sin_a, cos_a, sin_d, cos_d = np.sin(ra0), np.cos(ra0), np.sin(dec0), np.cos(dec0)
    x = cos_d * cos_a - xi * sin_a - eta * sin_d * cos_a
    y = cos_d * sin_a + xi * cos_a - eta * sin_d * sin_a
    z = sin_d + eta * cos_d
    return np.degrees(np.arctan2(y, x)) % 360.0, np.degrees(np.arctan2(z, np.hypot(x, y)))


def footprint_contains(corners, ra, dec, margin=0.0):
    """Which positions lie inside the convex polygon ``corners`` (an image's
    footprint: ``[(ra, dec), ...]`` in order around it), or within ``margin`` degrees
    outside it (a negative margin: that far inside).

    The polygon and the positions are projected about the polygon's centre; for
    footprints of a few degrees or less the projection's distortion of distances to the
    edges is negligible beside any useful margin.
    """
    corners = np.asarray(corners, np.float64).reshape(-1, 2)
    x, y, z = (np.mean(v) for v in unit_vectors(corners[:, 0], corners[:, 1]))
    ra0, dec0 = np.degrees(np.arctan2(y, x)) % 360.0, np.degrees(np.arctan2(z, np.hypot(x, y)))
    px, py = tangent_plane(corners[:, 0], corners[:, 1], ra0, dec0)
    qx, qy = tangent_plane(ra, dec, ra0, dec0)
    orientation = np.sign(np.sum(px * np.roll(py, -1) - np.roll(px, -1) * py))
    inside = np.isfinite(qx)
    for k in range(len(px)):
        ex, ey = px[(k + 1) % len(px)] - px[k], py[(k + 1) % len(px)] - py[k]
        # Signed distance from the edge, positive inwards.
        with np.errstate(invalid="ignore"):
            distance = orientation * (ex * (qy - py[k]) - ey * (qx - px[k])) / np.hypot(ex, ey)
            inside &= distance >= -margin
    return inside


def crossmatch(ra1, dec1, ra2, dec2, radius_arcsec):
    """Every pair of positions of two catalogues closer than ``radius_arcsec``.

    The second catalogue is sorted by zone and right ascension once (zones as high as
    the radius, so a position's neighbours are in its own zone and the next); each
    position of the first then finds its candidates by binary search, and the exact
    distance decides. Sources near RA 0/360 find their neighbours across it, and near
    a pole a whole zone is searched.

    Returns
    -------
    index1, index2 : `numpy.ndarray`
        Row numbers of each pair in the first and second catalogue, sorted by
        ``index1`` and then by separation.
    separation : `numpy.ndarray`
        Their separations, arcsec.
    """
    ra1, dec1 = np.asarray(ra1, np.float64) % 360.0, np.asarray(dec1, np.float64)
    ra2, dec2 = np.asarray(ra2, np.float64) % 360.0, np.asarray(dec2, np.float64)
    radius = float(radius_arcsec) / 3600.0
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if radius <= 0 or ra1.size == 0 or ra2.size == 0:
        return empty
    height = max(radius, 1e-7)
    # A little wider than the cone at the zone's edge: the exact test comes last.
    with np.errstate(divide="ignore"):
        alpha = np.minimum(radius / np.cos(np.radians(np.minimum(np.abs(dec1) + 2 * height,
                                                                 90.0))), 180.0)
    # The second catalogue, with copies across RA 0/360 for the first's wide windows,
    # keyed by zone then RA: one sorted array answers every range question.
    wrap = float(np.max(alpha))
    index2 = np.arange(ra2.size)
    left, right = ra2 < wrap, ra2 > 360.0 - wrap
    all_ra = np.concatenate([ra2, ra2[left] + 360.0, ra2[right] - 360.0])
    all_index = np.concatenate([index2, index2[left], index2[right]])
    all_zone = zone_of(np.concatenate([dec2, dec2[left], dec2[right]]), height)
    key = all_zone * 1000.0 + (all_ra + 360.0)
    order = np.argsort(key, kind="stable")
    key, all_index = key[order], all_index[order]

    # Asked in sorted order, the binary searches walk the array once instead of
    # jumping about it (several times faster for large catalogues).
    by_key = np.argsort(zone_of(dec1, height) * 1000.0 + ra1, kind="stable")
    ra1, dec1, alpha = ra1[by_key], dec1[by_key], alpha[by_key]
    zone1 = zone_of(dec1, height)
    low_zone, high_zone = zone_of(dec1 - radius, height), zone_of(dec1 + radius, height)
    pairs1, pairs2 = [], []
    for dz in range(-int(np.max(zone1 - low_zone)), int(np.max(high_zone - zone1)) + 1):
        zone = zone1 + dz
        searched = (zone >= low_zone) & (zone <= high_zone)
        base = zone * 1000.0 + 360.0
        # Half-open windows never find one object twice (a pole's window is 360 wide).
        start = np.searchsorted(key, base + ra1 - alpha, side="left")
        stop = np.searchsorted(key, base + ra1 + alpha, side="left")
        counts = np.where(searched, stop - start, 0)
        total = int(counts.sum())
        if total == 0:
            continue
        first = np.cumsum(counts) - counts
        pairs1.append(np.repeat(np.arange(ra1.size), counts))
        pairs2.append(all_index[np.arange(total) + np.repeat(start - first, counts)])
    if not pairs1:
        return empty
    i1, i2 = np.concatenate(pairs1), np.concatenate(pairs2)
    # The exact test on chords between unit vectors: no trigonometry per candidate.
    x1, y1, z1 = unit_vectors(ra1, dec1)
    x2, y2, z2 = unit_vectors(ra2, dec2)
    chord2 = (x1[i1] - x2[i2]) ** 2 + (y1[i1] - y2[i2]) ** 2 + (z1[i1] - z2[i2]) ** 2
    keep = chord2 <= (2 * np.sin(np.radians(radius) / 2)) ** 2
    i1, i2, chord2 = i1[keep], i2[keep], chord2[keep]
    separation = np.degrees(2 * np.arcsin(np.minimum(np.sqrt(chord2) / 2, 1.0))) * 3600.0
    i1 = by_key[i1]
    # By row of the first catalogue, then by separation: one sort of one key.
    order = np.argsort(i1 + separation / (radius_arcsec * (1 + 1e-9)), kind="stable")
    return i1[order], i2[order], separation[order]
