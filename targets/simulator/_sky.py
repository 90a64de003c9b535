"""The simulated sky: the source catalogue with light curves, the reference catalogue
an external survey would give, and where the telescope points (fields, airmass)."""

import zlib

import numpy as np
from astropy.table import Table, vstack

__all__ = ["airmass", "make_catalogue", "make_reference", "rng", "true_magnitudes"]

STAR_MAGS = (14.0, 24.0)
GALAXY_MAGS = (17.0, 24.0)
VARIABLE_FRACTION = 0.03
TRANSIENT_FRACTION = 0.01
REFERENCE_LIMIT = 21.5
"""Faintest r magnitude of the reference catalogue."""


def rng(seed, *keys):
    """A generator seeded by ``seed`` and ``keys`` (str or int): each part of the
    simulation draws from its own stream, so changing one leaves the others alone."""
    entropy = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        entropy.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key))
    return np.random.default_rng(entropy)


def _power_law_mags(generator, n, low, high, slope):
    """``n`` magnitudes in [low, high) with dN/dm proportional to 10**(slope*m)."""
    a, b = 10 ** (slope * low), 10 ** (slope * high)
    return np.log10(a + generator.uniform(size=n) * (b - a)) / slope


def _disc(generator, n, ra0, dec0, radius):
    """``n`` positions uniform on the sky within ``radius`` degrees of (ra0, dec0)."""
    r = radius * np.sqrt(generator.uniform(size=n))
    theta = generator.uniform(0, 2 * np.pi, size=n)
    dec = dec0 + r * np.sin(theta)
    ra = ra0 + r * np.cos(theta) / np.cos(np.radians(dec))
    return ra % 360.0, dec


def make_catalogue(seed, fields, radius, *, star_density, galaxy_density, filters,
                   mjd_range):
    """The true sources around each field.

    Parameters
    ----------
    fields : list of ``(name, ra, dec)``
    radius : `float`
        Degrees around each field centre to fill.
    star_density, galaxy_density : `float`
        Sources per square arcminute (to magnitude 24).
    filters : list of `str`
        Magnitude columns to give, among g, r, i.
    mjd_range : ``(start, end)``
        The nights simulated, MJD; transients start within it.
    """
    rows = []
    area = np.pi * (radius * 60.0) ** 2
    for index, (name, ra0, dec0) in enumerate(fields):
        g = rng(seed, "catalogue", index)
        n_star = g.poisson(star_density * area)
        n_gal = g.poisson(galaxy_density * area)
        n = n_star + n_gal
        ra, dec = _disc(g, n, ra0, dec0, radius)
        kind = np.array(["star"] * n_star + ["galaxy"] * n_gal)
        r_mag = np.concatenate([_power_law_mags(g, n_star, *STAR_MAGS, 0.25),
                                _power_law_mags(g, n_gal, *GALAXY_MAGS, 0.35)])
        g_r = np.concatenate([g.uniform(0.2, 1.4, n_star), g.uniform(0.4, 1.0, n_gal)])
        r_i = 0.35 * g_r + g.normal(0.0, 0.05, n)
        is_gal = kind == "galaxy"
        sersic = np.where(is_gal, np.where(g.uniform(size=n) < 0.7, 1.0, 4.0), 0.0)
        r_eff = np.where(is_gal, np.clip(g.lognormal(np.log(0.8), 0.4, n)
                                         * 10 ** (-0.1 * (r_mag - 20)), 0.25, 3.0), 0.0)
        q = np.where(is_gal, g.uniform(0.3, 1.0, n), 1.0)
        pa = np.where(is_gal, g.uniform(0.0, 180.0, n), 0.0)
        variability = np.array(["none"] * n, dtype="U9")
        amplitude, period, phase = np.zeros(n), np.zeros(n), np.zeros(n)
        t_start, decay = np.zeros(n), np.zeros(n)
        stars = np.flatnonzero(~is_gal)
        var = stars[g.uniform(size=stars.size) < VARIABLE_FRACTION]
        variability[var] = "periodic"
        amplitude[var] = g.uniform(0.05, 0.6, var.size)
        period[var] = 10 ** g.uniform(np.log10(0.05), np.log10(5.0), var.size)
        phase[var] = g.uniform(0.0, 1.0, var.size)
        n_tr = g.poisson(TRANSIENT_FRACTION * n)
        if n_tr:
            tra, tdec = _disc(g, n_tr, ra0, dec0, radius)
            ra, dec = np.concatenate([ra, tra]), np.concatenate([dec, tdec])
            kind = np.concatenate([kind, ["star"] * n_tr])
            r_mag = np.concatenate([r_mag, g.uniform(18.0, 21.5, n_tr)])
            tgr = g.uniform(-0.2, 0.6, n_tr)
            g_r, r_i = np.concatenate([g_r, tgr]), np.concatenate([r_i, 0.3 * tgr])
            zeros, ones = np.zeros(n_tr), np.ones(n_tr)
            sersic, r_eff, q, pa = (np.concatenate([sersic, zeros]),
                                    np.concatenate([r_eff, zeros]),
                                    np.concatenate([q, ones]), np.concatenate([pa, zeros]))
            variability = np.concatenate([variability, ["transient"] * n_tr])
            amplitude, period, phase = (np.concatenate([amplitude, zeros]),
                                        np.concatenate([period, zeros]),
                                        np.concatenate([phase, zeros]))
            t_start = np.concatenate([t_start, g.uniform(mjd_range[0] - 0.5, mjd_range[1],
                                                         n_tr)])
            decay = np.concatenate([decay, g.uniform(0.1, 0.5, n_tr)])
        mags = {"g": r_mag + g_r, "r": r_mag, "i": r_mag - r_i}
        table = Table()
        table["id"] = [f"{name}-{k:05d}" for k in range(len(ra))]
        table["field"] = [name] * len(ra)
        table["kind"] = kind
        table["ra"], table["dec"] = ra, dec
        for f in filters:
            table[f] = mags[f]
        table["sersic_n"], table["r_eff"] = sersic, r_eff
        table["axis_ratio"], table["pa"] = q, pa
        table["variability"] = variability
        table["amplitude"], table["period"], table["phase"] = amplitude, period, phase
        table["t_start"], table["decay"] = t_start, decay
        rows.append(table)
    table = vstack(rows) if rows else Table()
    table.meta["epoch_mjd"] = float(mjd_range[0])
    table.meta["description"] = CATALOGUE_COLUMNS
    for column, unit in (("ra", "deg"), ("dec", "deg"), ("r_eff", "arcsec"), ("pa", "deg"),
                         ("period", "d"), ("t_start", "d")):
        table[column].unit = unit
    return table


CATALOGUE_COLUMNS = {
    "id": "source identifier, <field>-<n>",
    "kind": "star or galaxy",
    "ra, dec": "true position, degrees (ICRS)",
    "g, r, i": "AB magnitude above the atmosphere (mean for periodic variables, peak "
               "for transients)",
    "sersic_n, r_eff, axis_ratio, pa": "galaxy profile: Sersic index (1 or 4), "
                                       "half-light radius (arcsec), b/a, position "
                                       "angle (deg east of north)",
    "variability": "none, periodic or transient",
    "amplitude, period, phase": "periodic: m(t) = m + amplitude * sin(2 pi ((t - "
                                "epoch_mjd) / period + phase)), t and period in days",
    "ref_id": "the source's id in the reference catalogue (masked if not in it)",
    "t_start, decay": "transient: absent before t_start (MJD); then m(t) = m + decay * "
                      "(t - t_start), decay in mag/day",
}


def true_magnitudes(catalogue, filter, mjd):
    """The true magnitudes of ``catalogue``'s sources in ``filter`` at time ``mjd``:
    ``inf`` for a transient not yet there.

    Parameters
    ----------
    catalogue : `astropy.table.Table`
        The truth catalogue (``truth/catalogue.ecsv``).
    filter : `str`
    mjd : `float`
        Modified Julian date (UTC) of the observation.
    """
    mag = np.array(catalogue[filter], dtype=float)
    epoch = float(catalogue.meta.get("epoch_mjd", 0.0))
    kind = np.asarray(catalogue["variability"])
    periodic = kind == "periodic"
    period = np.where(periodic, np.asarray(catalogue["period"], float), 1.0)
    mag = mag + np.where(periodic, np.asarray(catalogue["amplitude"], float) * np.sin(
        2 * np.pi * ((mjd - epoch) / period + np.asarray(catalogue["phase"], float))), 0.0)
    transient = kind == "transient"
    since = mjd - np.asarray(catalogue["t_start"], float)
    mag = np.where(transient, np.where(since >= 0,
                                       mag + np.asarray(catalogue["decay"], float) * since,
                                       np.inf), mag)
    return mag


def make_reference(seed, catalogue, filters, limit=REFERENCE_LIMIT):
    """The reference catalogue an external survey would give: stars brighter than
    ``limit`` in r (transients excluded: they were not there), with positions and
    magnitudes perturbed by their stated errors (0.02-0.05 arcsec, 0.01-0.03 mag,
    growing with magnitude)."""
    g = rng(seed, "reference")
    stars = catalogue[(catalogue["kind"] == "star") & (catalogue["variability"] != "transient")
                      & (catalogue["r"] < limit)]
    n = len(stars)
    frac = np.clip((np.asarray(stars["r"]) - STAR_MAGS[0]) / (limit - STAR_MAGS[0]), 0, 1)
    pos_err = 0.02 + 0.03 * frac ** 2
    mag_err = 0.01 + 0.02 * frac ** 2
    dec = np.asarray(stars["dec"]) + g.normal(0, 1, n) * pos_err / 3600.0
    ra = np.asarray(stars["ra"]) + g.normal(0, 1, n) * pos_err / 3600.0 / np.cos(
        np.radians(np.asarray(stars["dec"])))
    table = Table()
    table["id"] = [f"REF{k:06d}" for k in range(n)]
    table["ra"], table["dec"] = ra % 360.0, dec
    table["ra"].unit = table["dec"].unit = "deg"
    table["ra_error"], table["dec_error"] = pos_err, pos_err
    table["ra_error"].unit = table["dec_error"].unit = "arcsec"
    for f in filters:
        table[f] = np.asarray(stars[f]) + g.normal(0, 1, n) * mag_err
        table[f"{f}_error"] = mag_err
        table[f].unit = table[f"{f}_error"].unit = "mag"
    table.meta["description"] = (
        "Reference catalogue for astrometric and photometric calibration: stars brighter "
        f"than r = {limit}, positions (ICRS, degrees) and AB magnitudes with their 1-sigma "
        "errors (ra_error is along the great circle, arcsec).")
    return table, np.asarray(stars["id"])


def airmass(ra, dec, mjd, latitude, longitude):
    """Airmass (Hardie 1962) of (ra, dec) degrees at ``mjd`` (UTC) from a site; ``inf``
    below the horizon."""
    gmst = (280.46061837 + 360.98564736629 * (mjd + 2400000.5 - 2451545.0)) % 360.0
    hour_angle = np.radians(gmst + longitude - ra)
    lat, dec = np.radians(latitude), np.radians(dec)
    cos_z = np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(hour_angle)
    if cos_z <= 0.05:
        return float("inf")
    s = 1.0 / cos_z - 1.0
    return float(1.0 + s - 0.0018167 * s - 0.002875 * s ** 2 - 0.0008083 * s ** 3)


def local_sidereal_degrees(mjd, longitude):
    """Local mean sidereal time in degrees."""
    return (280.46061837 + 360.98564736629 * (mjd + 2400000.5 - 2451545.0) + longitude) % 360
