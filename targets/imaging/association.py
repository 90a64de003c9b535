"""Source association and running light-curve statistics: the arithmetic of
`targets.Object`, on arrays, knowing nothing of the database.

Association
    A source and an object are candidates when their *de Ruiter radius* (de Ruiter,
    Willis & Arp 1977; the LOFAR Transients Pipeline's gate)

        r = sqrt(xi² / (σα,1² + σα,2²) + eta² / (σδ,1² + σδ,2²))

    is at most the gate (5.68 by default), with ``xi``, ``eta`` the east and north
    offsets between them (in the tangent plane of one: exact across RA 0/360 and at the
    poles) and the σ the two positions' errors along RA (on the sky) and Dec.
    Candidates are resolved one-to-one, nearest first: pairs are taken in order of
    ``r`` (ties broken by the object's position in the given order, then the
    source's, so equidistant configurations always resolve the same way), and a pair
    is kept when neither its object nor its source is taken yet. Hence:

    - one-to-many (several sources of the new list near one object): the nearest joins
      the object; the others are distinct detections of that image and start objects
      of their own;
    - many-to-one (one source near several objects): it joins the nearest; the others
      have no detection in this list;
    - many-to-many: the greedy nearest-first pairing above.

    Sources left over start new objects.

Running sums
    An object's position is the weighted mean of its detections' tangent-plane offsets
    about a fixed reference point (its first detection), per axis with weights 1/σ²;
    its error is 1/sqrt(Σw). Per filter, fluxes ``f`` with errors ``σ`` (weights
    ``w = 1/σ²``) are kept as sums shifted by the first flux ``K`` (so that the
    differences below do not cancel catastrophically):

        n, Σ(f-K), Σ(f-K)², Σw, Σw(f-K), Σw(f-K)²

    from which, for N ≥ 2 (both are 0 for N = 1),

        V = sqrt(N/(N-1) (<f²> - <f>²)) / <f>
        η = N/(N-1) (<w f²> - <w f>²/<w>) = (Σw(f-K)² - (Σw(f-K))²/Σw) / (N-1)

    the flux's coefficient of variation and its reduced χ² about the weighted mean;
    both differences are unchanged by the shift.
"""

import dataclasses

import numpy as np

from .skymatch import crossmatch, from_tangent_plane, tangent_plane

__all__ = ["DE_RUITER_RADIUS", "FluxSums", "PositionSums", "associate", "de_ruiter_radius",
           "variability_indices"]

DE_RUITER_RADIUS = 5.68
"""The default gate on the de Ruiter radius: a true counterpart is outside it with
probability exp(-r²/2) ≈ 1e-7 (for Gaussian position errors)."""


def _offsets_arcsec(ra, dec, ra0, dec0):
    """East and north offsets of ``(ra, dec)`` from ``(ra0, dec0)``, arcsec."""
    xi, eta = tangent_plane(ra, dec, ra0, dec0)
    return xi * 3600.0, eta * 3600.0


def de_ruiter_radius(ra1, dec1, ra_err1, dec_err1, ra2, dec2, ra_err2, dec_err2):
    """The de Ruiter radius of pairs of positions (degrees) with errors (arcsec; the
    RA error along the great circle)."""
    xi, eta = _offsets_arcsec(ra2, dec2, ra1, dec1)
    return np.sqrt(xi ** 2 / (np.square(ra_err1) + np.square(ra_err2))
                   + eta ** 2 / (np.square(dec_err1) + np.square(dec_err2)))


def associate(objects, sources, *, radius=DE_RUITER_RADIUS, max_separation=10.0):
    """Pair each source with at most one object, one-to-one and nearest first.

    Parameters
    ----------
    objects, sources : `dict` of arrays
        ``ra``, ``dec`` (degrees), ``ra_err``, ``dec_err`` (arcsec; positive). The
        order of each breaks ties (give objects by id and sources by number).
    radius : `float`
        The gate on the de Ruiter radius.
    max_separation : `float`
        No pair further apart than this (arcsec) is a candidate, whatever the errors.

    Returns
    -------
    matched : `numpy.ndarray`
        Per source, the index of its object, or -1 if it starts a new one.
    r : `numpy.ndarray`
        Per source, the de Ruiter radius to its object (NaN if none).
    """
    n_sources = len(sources["ra"])
    matched, r_out = np.full(n_sources, -1, np.int64), np.full(n_sources, np.nan)
    if n_sources == 0 or len(objects["ra"]) == 0:
        return matched, r_out
    for errors in (objects["ra_err"], objects["dec_err"], sources["ra_err"],
                   sources["dec_err"]):
        if not np.all(np.asarray(errors) > 0):
            raise ValueError("associate: every position needs a positive error (arcsec); "
                             "give a floor for sources without one")
    widest = np.sqrt(max(np.max(objects["ra_err"]), np.max(objects["dec_err"])) ** 2
                     + max(np.max(sources["ra_err"]), np.max(sources["dec_err"])) ** 2)
    search = min(radius * widest, max_separation)
    i_src, i_obj, _ = crossmatch(sources["ra"], sources["dec"], objects["ra"],
                                 objects["dec"], search)
    r = de_ruiter_radius(*(np.asarray(objects[k])[i_obj] for k in ("ra", "dec", "ra_err",
                                                                   "dec_err")),
                         *(np.asarray(sources[k])[i_src] for k in ("ra", "dec", "ra_err",
                                                                   "dec_err")))
    gate = r <= radius
    i_src, i_obj, r = i_src[gate], i_obj[gate], r[gate]
    taken = np.zeros(len(objects["ra"]), bool)
    for k in np.lexsort((i_src, i_obj, r)):
        s, o = i_src[k], i_obj[k]
        if matched[s] < 0 and not taken[o]:
            matched[s], r_out[s], taken[o] = o, r[k], True
    return matched, r_out


@dataclasses.dataclass
class PositionSums:
    """Running weighted-mean positions of objects (arrays, one entry per object).

    ``ref_ra``, ``ref_dec`` is the tangent point (degrees); ``w_xi``, ``s_xi``,
    ``w_eta``, ``s_eta`` are Σ1/σ² and Σoffset/σ² (arcsec) per axis.
    """

    ref_ra: np.ndarray
    ref_dec: np.ndarray
    w_xi: np.ndarray
    s_xi: np.ndarray
    w_eta: np.ndarray
    s_eta: np.ndarray

    @classmethod
    def start(cls, ra, dec, ra_err, dec_err):
        """The sums of objects of one detection each, referred to that detection."""
        ra, dec = np.asarray(ra, np.float64) % 360.0, np.asarray(dec, np.float64)
        zeros = np.zeros_like(ra)
        return cls(ra, dec, 1.0 / np.square(ra_err), zeros, 1.0 / np.square(dec_err),
                   zeros.copy())

    def add(self, ra, dec, ra_err, dec_err):
        """The sums with one more detection of each object (new arrays)."""
        xi, eta = _offsets_arcsec(ra, dec, self.ref_ra, self.ref_dec)
        w_xi, w_eta = 1.0 / np.square(ra_err), 1.0 / np.square(dec_err)
        return dataclasses.replace(self, w_xi=self.w_xi + w_xi, s_xi=self.s_xi + w_xi * xi,
                                   w_eta=self.w_eta + w_eta, s_eta=self.s_eta + w_eta * eta)

    def position(self):
        """``(ra, dec, ra_err, dec_err)``: the weighted means (degrees) and their errors
        (arcsec)."""
        ra, dec = from_tangent_plane(self.s_xi / self.w_xi / 3600.0,
                                     self.s_eta / self.w_eta / 3600.0, self.ref_ra,
                                     self.ref_dec)
        return ra, dec, 1.0 / np.sqrt(self.w_xi), 1.0 / np.sqrt(self.w_eta)


@dataclasses.dataclass
class FluxSums:
    """Running flux statistics of objects in one filter (arrays, one entry per object):
    the shifted sums of the module docstring."""

    n: np.ndarray
    shift: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    sw: np.ndarray
    swf: np.ndarray
    swff: np.ndarray

    @classmethod
    def start(cls, flux, flux_err):
        """The sums of one measurement each, shifted by it."""
        flux = np.asarray(flux, np.float64)
        zeros = np.zeros_like(flux)
        return cls(np.ones(flux.shape, np.int64), flux, zeros, zeros.copy(),
                   1.0 / np.square(flux_err), zeros.copy(), zeros.copy())

    def add(self, flux, flux_err):
        """The sums with one more measurement of each object (new arrays)."""
        d = np.asarray(flux, np.float64) - self.shift
        w = 1.0 / np.square(flux_err)
        return dataclasses.replace(self, n=self.n + 1, s1=self.s1 + d, s2=self.s2 + d * d,
                                   sw=self.sw + w, swf=self.swf + w * d,
                                   swff=self.swff + w * d * d)

    def statistics(self):
        """``(mean, mean_err, v, eta)``: the weighted mean flux and its error, and the
        variability indices (0 where N = 1)."""
        n = self.n.astype(np.float64)
        mean = self.shift + self.swf / self.sw
        mean_err = 1.0 / np.sqrt(self.sw)
        several = n > 1
        m = np.where(several, n - 1, 1.0)
        variance = np.maximum(self.s2 - self.s1 ** 2 / n, 0.0) / m
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(several, np.sqrt(variance) / (self.shift + self.s1 / n), 0.0)
        eta = np.where(several, np.maximum(self.swff - self.swf ** 2 / self.sw, 0.0) / m, 0.0)
        return mean, mean_err, v, eta


def variability_indices(flux, flux_err):
    """``(v, eta)`` of one light curve, computed in two passes over all of it (the batch
    reference the running sums are checked against)."""
    f, w = np.asarray(flux, np.float64), 1.0 / np.square(np.asarray(flux_err, np.float64))
    if f.size < 2:
        return 0.0, 0.0
    v = np.std(f, ddof=1) / np.mean(f)
    eta = np.sum(w * (f - np.sum(w * f) / np.sum(w)) ** 2) / (f.size - 1)
    return float(v), float(eta)
