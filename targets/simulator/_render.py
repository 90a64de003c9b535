"""Rendering in electrons: stars through a Moffat PSF, galaxies as Sersic profiles
convolved with it, cosmic rays; then the detector's conversion to ADU."""

import numpy as np
from scipy.signal import fftconvolve

__all__ = ["add_cosmics", "moffat_alpha", "read_out", "render_galaxies", "render_stars"]

BETA = 3.0
"""Moffat index of the simulated PSF."""

_CHUNK = 256


def moffat_alpha(fwhm, beta=BETA):
    """Moffat core width for a FWHM (same units)."""
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def _moffat(r2, alpha, beta=BETA):
    """Moffat surface brightness of unit total flux at squared radius ``r2``."""
    return (beta - 1.0) / (np.pi * alpha ** 2) * (1.0 + r2 / alpha ** 2) ** (-beta)


def _deposit(image, x0, y0, stamps):
    """Add ``stamps`` (n, s, s) with lower-left corners (x0, y0) into ``image``."""
    ny, nx = image.shape
    n, size, _ = stamps.shape
    oy, ox = np.mgrid[0:size, 0:size]
    xs = x0[:, None, None] + ox
    ys = y0[:, None, None] + oy
    inside = (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
    flat = (ys[inside] * nx + xs[inside])
    image += np.bincount(flat, weights=stamps[inside], minlength=nx * ny).reshape(ny, nx)


def render_stars(image, x, y, flux, fwhm):
    """Add point sources of total ``flux`` (e-) at pixel positions (x, y) (0-based,
    pixel centres at integers) through a Moffat PSF of ``fwhm`` pixels, sampled at
    pixel centres."""
    alpha = moffat_alpha(fwhm)
    bright = flux > 2e5
    for select, reach in ((~bright, 5.0), (bright, 12.0)):
        half = int(np.ceil(reach * fwhm))
        idx = np.flatnonzero(select)
        for start in range(0, idx.size, _CHUNK):
            part = idx[start:start + _CHUNK]
            ix, iy = np.round(x[part]).astype(int), np.round(y[part]).astype(int)
            off = np.arange(-half, half + 1)
            dx = ix[:, None] - x[part][:, None] + off[None, :]
            dy = iy[:, None] - y[part][:, None] + off[None, :]
            r2 = dy[:, :, None] ** 2 + dx[:, None, :] ** 2
            stamps = flux[part][:, None, None] * _moffat(r2, alpha)
            _deposit(image, ix - half, iy - half, stamps)


def psf_stamp(fwhm, half):
    """The PSF on a (2 half + 1)^2 grid, centred, summing to 1."""
    off = np.arange(-half, half + 1)
    stamp = _moffat(off[:, None] ** 2 + off[None, :] ** 2, moffat_alpha(fwhm))
    return stamp / stamp.sum()


def _sersic_b(n):
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n)


def render_galaxies(image, x, y, flux, sersic_n, r_eff, axis_ratio, angle, fwhm):
    """Add galaxies (Sersic profiles of half-light radius ``r_eff`` pixels, axis ratio,
    major axis at ``angle`` radians from the +x axis) convolved with the Moffat PSF."""
    halves = np.clip(np.ceil(5.0 * r_eff + 3.0 * fwhm), 8, 96).astype(int)
    buckets = 2 ** np.ceil(np.log2(halves)).astype(int)
    for half in np.unique(buckets):
        idx = np.flatnonzero(buckets == half)
        psf = psf_stamp(fwhm, min(half, int(np.ceil(6 * fwhm))))
        for start in range(0, idx.size, max(1, _CHUNK * 16 // half)):
            part = idx[start:start + max(1, _CHUNK * 16 // half)]
            ix, iy = np.round(x[part]).astype(int), np.round(y[part]).astype(int)
            off = np.arange(-half, half + 1)
            dx = (ix[:, None] - x[part][:, None] + off[None, :])[:, None, :]
            dy = (iy[:, None] - y[part][:, None] + off[None, :])[:, :, None]
            cos, sin = np.cos(angle[part])[:, None, None], np.sin(angle[part])[:, None, None]
            major = dx * cos + dy * sin
            minor = (-dx * sin + dy * cos) / axis_ratio[part][:, None, None]
            r = np.sqrt(major ** 2 + minor ** 2 + 0.25) / r_eff[part][:, None, None]
            n = sersic_n[part][:, None, None]
            profile = np.exp(-_sersic_b(n) * (r ** (1.0 / n) - 1.0))
            profile /= profile.sum(axis=(1, 2), keepdims=True)
            stamps = fftconvolve(profile, psf[None], mode="same", axes=(1, 2))
            stamps *= flux[part][:, None, None] / stamps.sum(axis=(1, 2), keepdims=True)
            _deposit(image, ix - half, iy - half, stamps)


def add_cosmics(generator, image, exptime, rate):
    """Add cosmic rays (single pixels and tracks) for ``exptime`` seconds (plus 30 s of
    readout) at ``rate`` events per pixel per second; returns their pixels as
    ``(x, y, electrons)`` arrays."""
    ny, nx = image.shape
    count = generator.poisson(rate * nx * ny * (exptime + 30.0))
    xs, ys, es = [], [], []
    for _ in range(count):
        x0, y0 = generator.uniform(0, nx), generator.uniform(0, ny)
        if generator.uniform() < 0.6:                      # a single pixel, or a pair
            n = 1 if generator.uniform() < 0.7 else 2
            px = np.array([int(x0), int(x0) + 1])[:n]
            py = np.array([int(y0), int(y0)])[:n]
            e = generator.exponential(4000.0, n) + 800.0
        else:                                              # a track
            length = generator.uniform(3, 30)
            theta = generator.uniform(0, np.pi)
            t = np.arange(0.0, length, 0.5)
            px = (x0 + t * np.cos(theta)).astype(int)
            py = (y0 + t * np.sin(theta)).astype(int)
            keep = np.ones(px.size, bool)
            keep[1:] = (np.diff(px) != 0) | (np.diff(py) != 0)
            px, py = px[keep], py[keep]
            e = generator.uniform(600.0, 3000.0, px.size)
        inside = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
        xs.append(px[inside]), ys.append(py[inside]), es.append(e[inside])
    if not xs:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    x, y, e = np.concatenate(xs), np.concatenate(ys), np.concatenate(es)
    np.add.at(image, (y, x), e)
    flat = y * nx + x
    unique, inverse = np.unique(flat, return_inverse=True)
    total = np.bincount(inverse, weights=e)
    return unique % nx, unique // nx, total


def read_out(generator, electrons, chip, bias_offset, data_offset=0.0):
    """The raw uint16 image of a chip: the data (``electrons``, already with Poisson
    noise, clipped at full well) converted with the gain onto the bias, read noise
    added, plus the overscan strip; clipped to 0..65535. ``data_offset`` (ADU) is added
    to the data area only: a bias the overscan does not follow."""
    ny, nx = electrons.shape
    raw = chip.bias + bias_offset
    raw = raw + generator.normal(0.0, chip.read_noise / chip.gain, raw.shape)
    raw[:, :nx] += np.minimum(electrons, chip.full_well) / chip.gain
    if data_offset:
        raw[:, :nx] += data_offset
    return np.clip(np.round(raw), 0, 65535).astype(np.uint16)
