"""Seeded synthetic star fields with a known WCS, PSF and zeropoint, for the imaging tests.

Only the tests use this; the simulator (`targets.simulator`) is the project's full model of
a night. Here everything that the astrometric and photometric calibration should recover
is kept as truth: pixel positions, sky positions, total fluxes, the PSF's FWHM, the
zeropoint.
"""

from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS, Sip

__all__ = ["StarField", "make_starfield", "moffat_alpha", "perturbed_wcs", "tan_wcs"]


@dataclass
class StarField:
    """A synthetic exposure and everything that went into it."""

    image: np.ndarray
    """Flat-fielded pixels in ADU, background included, saturated pixels clipped."""
    mask: np.ndarray
    """True where a pixel is bad or saturated."""
    weight: np.ndarray
    """Inverse variance of the background noise (ADU⁻²); 0 where masked."""
    wcs: WCS
    """The true WCS (with SIP when distortion was injected)."""
    wcs_guess: WCS
    """The header WCS: the true one (without distortion) off in pointing, rotation, scale."""
    truth: Table
    """Every star: ``x``, ``y`` (0-based pixels), ``ra``, ``dec``, ``mag``, ``flux`` (total
    ADU), ``saturated``."""
    reference: Table
    """The reference catalogue: ``ra``, ``dec`` (deg), ``ra_error``, ``dec_error`` (arcsec),
    ``r``, ``r_error`` (mag)."""
    zeropoint: float
    """Magnitude of 1 ADU/s."""
    exptime: float
    fwhm: float
    """The PSF's FWHM in pixels."""
    saturation: float
    """ADU at which pixels were clipped."""
    gain: float
    """Electrons per ADU."""


def moffat_alpha(fwhm, beta):
    """The Moffat core width α that gives ``fwhm``."""
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def tan_wcs(shape, *, ra=150.0, dec=2.0, scale=0.25, rotation=0.0, sip=None):
    """A TAN WCS centred on ``shape``, ``scale`` arcsec per pixel, north up east left,
    rotated by ``rotation`` degrees; ``sip`` = ``(a, b)`` coefficient arrays adds SIP."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    c, s = np.cos(np.radians(rotation)), np.sin(np.radians(rotation))
    w.wcs.cd = scale / 3600.0 * np.array([[-c, s], [s, c]])
    w.pixel_shape = (shape[1], shape[0])
    if sip is not None:
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        w.sip = Sip(sip[0], sip[1], None, None, w.wcs.crpix)
    return w


def perturbed_wcs(wcs, *, offset=(20.0, 0.0), rotation=0.3, scale=0.003):
    """``wcs`` without distortion, pointed ``offset`` arcsec (east, north) away, rotated
    by ``rotation`` degrees and with its pixel scale ``1 + scale`` times larger."""
    guess = WCS(naxis=2)
    guess.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    guess.wcs.crpix = wcs.wcs.crpix
    dec = wcs.wcs.crval[1]
    guess.wcs.crval = [wcs.wcs.crval[0] + offset[0] / 3600.0 / np.cos(np.radians(dec)),
                       dec + offset[1] / 3600.0]
    c, s = np.cos(np.radians(rotation)), np.sin(np.radians(rotation))
    guess.wcs.cd = (1.0 + scale) * np.array([[c, -s], [s, c]]) @ wcs.wcs.cd
    guess.pixel_shape = wcs.pixel_shape
    return guess


def _render(image, x, y, flux, alpha, beta, radius, oversample):
    """Add Moffat stars integrated over pixels (midpoint rule on an ``oversample``² grid)."""
    ny, nx = image.shape
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    offsets = np.arange(-radius, radius + 1)
    norm = (beta - 1.0) / (np.pi * alpha ** 2)
    for xi, yi, fi in zip(x, y, flux):
        cx, cy = int(round(xi)), int(round(yi))
        cols, rows = cx + offsets, cy + offsets
        dx = (cols[None, :, None] + sub[None, None, :] - xi)   # (1, nx, s)
        dy = (rows[:, None, None] + sub[None, None, :] - yi)   # (ny, 1, s)
        r2 = dx[:, :, :, None] ** 2 + dy[:, :, None, :] ** 2   # (ny, nx, s, s)
        stamp = fi * norm * np.mean((1.0 + r2 / alpha ** 2) ** -beta, axis=(2, 3))
        keep_r = (rows >= 0) & (rows < ny)
        keep_c = (cols >= 0) & (cols < nx)
        image[np.ix_(rows[keep_r], cols[keep_c])] += stamp[np.ix_(keep_r, keep_c)]


def make_starfield(seed, *, shape=(768, 768), n_stars=300, mag_range=(15.0, 22.5),
                   fwhm=3.5, beta=3.0, zeropoint=25.0, exptime=60.0, sky=200.0, gain=1.5,
                   read_noise=5.0, saturation=60000.0, sip=None, ref_pos_err=0.02,
                   ref_mag_err=(0.01, 0.03), offset=(20.0, 0.0), rotation=0.3, scale=0.003,
                   n_bad_columns=2, oversample=5, stamp_radius=25):
    """Make a seeded star field.

    Stars are uniform on the chip with magnitudes uniform in ``mag_range``; the PSF is a
    circular Moffat of ``fwhm`` pixels and ``beta``, integrated over pixels; noise is
    Poisson (sky and stars, through ``gain``) plus Gaussian read noise; pixels above
    ``saturation`` ADU are clipped and masked. The reference catalogue holds every star
    (so some are too faint to detect) with Gaussian errors of ``ref_pos_err`` arcsec per
    axis and a magnitude error drawn uniformly from ``ref_mag_err``.
    """
    rng = np.random.default_rng(seed)
    wcs = tan_wcs(shape, sip=sip)
    ny, nx = shape
    x = rng.uniform(5, nx - 6, n_stars)
    y = rng.uniform(5, ny - 6, n_stars)
    mag = rng.uniform(*mag_range, n_stars)
    flux = exptime * 10 ** (-0.4 * (mag - zeropoint))

    model = np.full(shape, float(sky))
    _render(model, x, y, flux, moffat_alpha(fwhm, beta), beta, stamp_radius, oversample)
    electrons = rng.poisson(model * gain).astype(float)
    image = (electrons + rng.normal(0.0, read_noise, shape)) / gain
    saturated_pixels = image >= saturation
    image = np.minimum(image, saturation)

    mask = saturated_pixels.copy()
    for col in rng.integers(20, nx - 20, n_bad_columns):
        mask[:, col] = True
        image[:, col] = rng.normal(5.0 * sky, 50.0, ny)  # hot column
    variance = (sky * gain + read_noise ** 2) / gain ** 2
    weight = np.where(mask, 0.0, 1.0 / variance)

    ra, dec = wcs.all_pix2world(x, y, 0)
    cos_dec = np.cos(np.radians(dec))
    mag_err = rng.uniform(*ref_mag_err, n_stars)
    reference = Table({
        "ra": ra + rng.normal(0.0, ref_pos_err, n_stars) / 3600.0 / cos_dec,
        "dec": dec + rng.normal(0.0, ref_pos_err, n_stars) / 3600.0,
        "ra_error": np.full(n_stars, ref_pos_err),
        "dec_error": np.full(n_stars, ref_pos_err),
        "r": mag + rng.normal(0.0, 1.0, n_stars) * mag_err,
        "r_error": mag_err,
    })
    reference["ra"].unit = reference["dec"].unit = "deg"
    reference["ra_error"].unit = reference["dec_error"].unit = "arcsec"
    reference["r"].unit = reference["r_error"].unit = "mag"
    order = rng.permutation(n_stars)  # the catalogue is not in the image's order
    reference = reference[order]

    xi, yi = np.rint(x).astype(int), np.rint(y).astype(int)
    truth = Table({"x": x, "y": y, "ra": ra, "dec": dec, "mag": mag, "flux": flux,
                   "saturated": saturated_pixels[yi, xi], "reference_row": np.argsort(order)})
    guess = perturbed_wcs(wcs, offset=offset, rotation=rotation, scale=scale)
    return StarField(image=image, mask=mask, weight=weight, wcs=wcs, wcs_guess=guess,
                     truth=truth, reference=reference, zeropoint=zeropoint, exptime=exptime,
                     fwhm=fwhm, saturation=saturation, gain=gain)
