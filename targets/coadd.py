"""Coadd: calibrated exposures of a patch of sky, regridded onto one grid and stacked.

``Coadd.get(ra=..., dec=..., filter=..., start=..., end=...)`` (or ``field=`` a field's
``OBJECT`` name instead of ``ra`` and ``dec``: the centre of its exposures) finds the raw
science frames in the filter, taken in ``[start, end)``, whose chip covers ``(ra, dec)`` (by the
telescope's WCS recorded at ingest), gets each one's `RegriddedFrame` (its
`CalibratedExposure`, background-subtracted, scaled to the common zeropoint and
resampled onto the grid; `targets.imaging.regrid`) and stacks them with outlier
rejection. The grid is a north-up TAN grid with its tangent point at ``(ra, dec)``; its
pixel scale (``scale``, arcsec) and size (``nx``, ``ny``) are optional selectors, by
default the inputs' own pixel scale and the smallest grid covering every input chip
(plus `GRID_MARGIN` for the telescope's pointing error).

Pixel values are fluxes on the common zeropoint: ``mag = -2.5 log10(value) +
zeropoint`` (`RegriddedFrame`'s process parameter ``zeropoint``, 30 by default), i.e.
each exposure's ADU are divided by its exposure time and multiplied by
``10**(0.4 (zeropoint - its zeropoint))``. The coadd file holds the image (primary HDU,
with the grid's WCS), ``WEIGHT`` (inverse variance) and ``COUNT`` (exposures accepted
per pixel); a `CoaddSourceList` extracts its sources.
"""

import datetime

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from persistence import persistent

from .calibrated_exposure import CalibratedExposure
from .dependency import dependency
from .imaging.astrometry import measure_background
from .imaging.ccd import fits_section
from .imaging.regrid import Grid, Regridded, covering_grid, regrid, stack
from .imaging.skymatch import separation_arcsec, unit_vectors
from .parameters import ProcessParameters
from .process import ProcessTarget
from .quality import QualityFlag, flags
from .raw import Chip, RawScienceFrame, mid_exposure_mjd

__all__ = ["GRID_MARGIN", "Coadd", "RegriddedFrame"]

GRID_MARGIN = 10.0
"""Margin (arcsec) added around the inputs' chips, by the telescope's WCS, in the
default grid: room for the pointing error the astrometric solution corrects."""

GRID_DEFAULTS = {"scale": 0.0, "nx": 0, "ny": 0}
"""The optional grid selectors: 0 means the default (see the module docstring)."""

def _corners(frame):
    return np.reshape(frame.footprint, (-1, 2))


def _native_scale(frame):
    """The pixel scale (arcsec) of a raw frame, from its footprint and size."""
    rows, columns = fits_section(frame.data_section)
    corners = _corners(frame)
    width = separation_arcsec(*corners[0], *corners[1])
    return float(width / (columns.stop - columns.start))


def frames_for(selectors):
    """The usable raw science frames of a coadd's selectors: in the filter, taken in
    ``[start, end)``, with a chip covering ``(ra, dec)``; in time order."""
    return RawScienceFrame.covering(
        selectors["ra"], selectors["dec"],
        where=((RawScienceFrame.filter == selectors["filter"])
               & (RawScienceFrame.date_obs >= selectors["start"])
               & (RawScienceFrame.date_obs < selectors["end"])))


def field_centre(name, filter_name=None):
    """``(ra, dec)``: the centre of the chips of the raw science frames of field
    ``name`` (their ``OBJECT``), in ``filter_name`` if given.

    Raises
    ------
    ValueError
        Raised if no raw science frame with a footprint has that ``OBJECT``.
    """
    found = RawScienceFrame.object == name
    if filter_name is not None:
        found = found & (RawScienceFrame.filter == filter_name)
    corners = [_corners(f) for f in found if f.footprint]
    if not corners:
        known = sorted({f.object for f in RawScienceFrame.all()})
        raise ValueError(f"no raw science frame of field {name!r}"
                         + (f" in {filter_name}" if filter_name else "")
                         + f"; the fields ingested are: {', '.join(known) or 'none'}")
    x, y, z = (np.mean(v) for v in unit_vectors(*np.concatenate(corners).T))
    return (float(np.degrees(np.arctan2(y, x)) % 360.0),
            float(np.degrees(np.arctan2(z, np.hypot(x, y)))))


def grid_for(selectors, frames):
    """The coadd's `Grid`: the selectors' scale and size, or the defaults."""
    scale = selectors["scale"] or _native_scale(frames[0])
    ra, dec = float(selectors["ra"]), float(selectors["dec"])
    if selectors["nx"] and selectors["ny"]:
        return Grid(ra, dec, float(scale), int(selectors["nx"]), int(selectors["ny"]))
    grid = covering_grid([_corners(f) for f in frames], scale, ra=ra, dec=dec,
                         margin=GRID_MARGIN)
    return Grid(grid.ra, grid.dec, grid.scale, int(selectors["nx"] or grid.nx),
                int(selectors["ny"] or grid.ny))


def _regridded_frames(selectors):
    frames = frames_for(selectors)
    if not frames:
        return []
    grid = grid_for(selectors, frames)
    return [{"raw": f, "ra": grid.ra, "dec": grid.dec, "scale": grid.scale, "nx": grid.nx,
             "ny": grid.ny} for f in frames]


# -- RegriddedFrame --------------------------------------------------------------------

class RegriddedFrameParameters(ProcessParameters):
    zeropoint = persistent("The common zeropoint the frame is scaled to: mag = -2.5 "
                           "log10(value) + zeropoint", float, 30.0)


class RegriddedFrame(ProcessTarget):
    """A CalibratedExposure, background-subtracted, scaled to the common zeropoint and
    resampled (flux-conserving, with its weights) onto the part of a grid it covers.

    It sets no quality flags: its exposure's quality is `CalibratedExposure`'s to judge,
    and resampling adds no failure of its own. One that misses the grid (its solved
    footprint off it) is empty and adds nothing; the coadd's coverage is judged by
    `Coadd` itself.
    """

    SELECTORS = ("raw", "ra", "dec", "scale", "nx", "ny")
    Parameters = RegriddedFrameParameters
    CODE_VERSION = "1"
    filename_prefix = "Regrid"

    exposure = dependency("The calibrated exposure", CalibratedExposure,
                          selectors=lambda s: {"raw": s["raw"]})

    raw = persistent("The raw science frame", RawScienceFrame, None)
    chip = persistent("The chip", Chip, None)
    filter = persistent("Filter name", str, "")
    date_obs = persistent("Start of the exposure (UTC)", datetime.datetime, None)
    exptime = persistent("Exposure time [s]", float, 0.0)
    ra = persistent("The grid's tangent point: right ascension [deg]", float, None)
    dec = persistent("The grid's tangent point: declination [deg]", float, None)
    scale = persistent("The grid's pixel scale [arcsec]", float, None)
    nx = persistent("The grid's width [pixels]", int, 0)
    ny = persistent("The grid's height [pixels]", int, 0)
    x0 = persistent("Grid column of the cut-out's first column", int, 0)
    y0 = persistent("Grid row of the cut-out's first row", int, 0)
    flux_scale = persistent("Factor from the exposure's ADU to the common zeropoint",
                            float, None)
    zeropoint = persistent("The common zeropoint: mag = -2.5 log10(value) + zeropoint",
                           float, None)
    gain = persistent("Electrons per unit of the regridded pixels", float, None)

    @classmethod
    def new(cls, selectors):
        raw = selectors["raw"]
        return cls(raw=raw, chip=raw.chip, filter=raw.filter, date_obs=raw.date_obs,
                   exptime=raw.exptime, **{k: selectors[k] for k in cls.SELECTORS[1:]})

    def grid(self):
        return Grid(self.ra, self.dec, self.scale, self.nx, self.ny)

    def make(self, workdir):
        exposure, pars = self.exposure, self.process_parameters
        science, weight, mask = exposure.images()
        bad = mask != 0
        background = measure_background(science, bad)
        self.zeropoint = pars.zeropoint
        self.flux_scale = float(10 ** (0.4 * (pars.zeropoint - exposure.zeropoint))
                                / exposure.exptime)
        self.gain = float(self.raw.gain / self.flux_scale) if self.raw.gain else None
        result = regrid(science - background.level, np.where(bad, 0.0, weight),
                        exposure.wcs(), self.grid(), scale=self.flux_scale)
        if result.is_empty:  # the telescope's footprint overlapped, the solved one not
            result = Regridded(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32),
                               0, 0)
        self.x0, self.y0 = int(result.x0), int(result.y0)
        header = self.grid().wcs()[self.y0:self.y0 + result.data.shape[0],
                                   self.x0:self.x0 + result.data.shape[1]].to_header()
        for key, value, comment in [
                ("X0", self.x0, "Grid column of column 1 (0-based)"),
                ("Y0", self.y0, "Grid row of row 1 (0-based)"),
                ("FLXSCALE", self.flux_scale, "ADU of the exposure to these units"),
                ("MAGZP", self.zeropoint, "mag = -2.5 log10(value) + MAGZP"),
                ("FILTER", self.filter, "Filter")]:
            header[key] = (value, comment)
        path = workdir / "regridded.fits"
        fits.HDUList([fits.PrimaryHDU(result.data, header),
                      fits.ImageHDU(result.weight, name="WEIGHT")]).writeto(path)
        return path

    def regridded(self):
        """The file as a `targets.imaging.regrid.Regridded`."""
        with fits.open(self.retrieve(), memmap=False) as hdul:
            return Regridded(hdul[0].data, hdul["WEIGHT"].data, self.x0, self.y0)


# -- Coadd -----------------------------------------------------------------------------

class CoaddParameters(ProcessParameters):
    sigma = persistent("Outlier rejection threshold [sigma]", float, 3.0)
    amplitude_fraction = persistent(
        "Fraction of a source's local peak its profile may differ by between frames "
        "without being rejected (SWarp's CLIP_AMPFRAC)", float, 0.3)
    min_frames_for_rejection = persistent("Fewest frames at a pixel to reject any", int, 3)
    min_coverage = persistent(
        "verify(): smallest fraction of the grid's pixels with an exposure; the default "
        "grid is the inputs' plus a margin, so most of it is covered", float, 0.5)


class Coadd(ProcessTarget):
    """The calibrated exposures of a patch of sky in one filter and time range,
    regridded onto one grid and stacked with outlier rejection."""

    SELECTORS = ("ra", "dec", "filter", "start", "end", "scale", "nx", "ny")
    Parameters = CoaddParameters
    CODE_VERSION = "1"
    QUALITY_FLAGS = flags(
        QualityFlag(1, "coverage", "less than min_coverage of the grid has an exposure: "
                    "a grid larger than the exposures, or exposures off the position"))
    filename_prefix = "Coadd"

    frames = dependency("The exposures covering the position, regridded", RegriddedFrame,
                        many=True, selectors=_regridded_frames)

    ra = persistent("The grid's tangent point: right ascension [deg]", float, None)
    dec = persistent("The grid's tangent point: declination [deg]", float, None)
    filter = persistent("Filter name", str, "")
    start = persistent("Earliest exposure start asked for (UTC)", datetime.datetime, None)
    end = persistent("Latest exposure start asked for (UTC), exclusive",
                     datetime.datetime, None)
    scale = persistent("Pixel scale asked for [arcsec]; 0: the inputs'", float, 0.0)
    nx = persistent("Width asked for [pixels]; 0: covering the inputs", int, 0)
    ny = persistent("Height asked for [pixels]; 0: covering the inputs", int, 0)
    n_frames = persistent("Number of exposures stacked", int, 0)
    exptime = persistent("Total exposure time [s]", float, 0.0)
    mjd = persistent("Mean of the exposures' mid-exposure MJDs", float, None)
    zeropoint = persistent("mag = -2.5 log10(value) + zeropoint", float, None)
    gain = persistent("Effective electrons per unit (the sources' Poisson noise)", float,
                      None)
    background_rms = persistent("Median noise of the sky where every frame counts", float,
                                None)
    coverage = persistent("Fraction of the grid's pixels where an exposure counts", float,
                          None)

    @classmethod
    def check_selectors(cls, selectors):
        """The selectors, with the grid's (``scale``, ``nx``, ``ny``) optional, and
        ``field`` (an ``OBJECT`` name) standing for the ``ra`` and ``dec`` of its
        exposures' centre."""
        selectors = dict(selectors)
        if "field" in selectors and "ra" not in selectors and "dec" not in selectors:
            selectors["ra"], selectors["dec"] = field_centre(selectors.pop("field"),
                                                             selectors.get("filter"))
        return super().check_selectors({**GRID_DEFAULTS, **selectors})

    def make(self, workdir):
        pars, frames = self.process_parameters, list(self.frames)
        if not frames:
            raise ValueError(
                f"no raw science frame in {self.filter} taken from {self.start} to "
                f"{self.end} covers ({self.ra:.5f}, {self.dec:+.5f}); widen the dates, or "
                "check the position and filter (Coadd.plan shows what was looked for)")
        zeropoints = {f.zeropoint for f in frames}
        if len(zeropoints) > 1:
            raise ValueError(f"the regridded frames have different zeropoints "
                             f"{sorted(zeropoints)}: make them with one RegriddedFrame "
                             "zeropoint")
        grid = frames[0].grid()
        stacked = stack([f.regridded() for f in frames], grid.shape, sigma=pars.sigma,
                        min_frames_for_rejection=pars.min_frames_for_rejection,
                        amplitude_fraction=pars.amplitude_fraction)
        self.n_frames = len(frames)
        self.coverage = float(np.mean(stacked.count > 0))
        self.exptime = float(sum(f.exptime for f in frames))
        self.mjd = float(np.mean([mid_exposure_mjd(f.date_obs, f.exptime) for f in frames]))
        self.zeropoint = frames[0].zeropoint
        # A weighted mean of frames of gains g_i (equal weights): N² / Σ 1/g_i.
        gains = [f.gain for f in frames if f.gain]
        self.gain = (float(len(gains) ** 2 / sum(1.0 / g for g in gains))
                     if len(gains) == len(frames) else None)
        full = stacked.count == stacked.count.max()
        self.background_rms = float(np.median(1.0 / np.sqrt(stacked.weight[full]))) \
            if np.any(full & (stacked.weight > 0)) else None
        header = grid.wcs().to_header()
        for key, value, comment in [
                ("FILTER", self.filter, "Filter"), ("NCOMBINE", self.n_frames,
                                                   "Exposures stacked"),
                ("EXPTIME", self.exptime, "Total exposure time [s]"),
                ("MJD-OBS", self.mjd, "Mean mid-exposure MJD"),
                ("MAGZP", self.zeropoint, "mag = -2.5 log10(value) + MAGZP"),
                ("GAIN", self.gain or 0.0, "Effective electrons per unit")]:
            header[key] = (value, comment)
        path = workdir / "coadd.fits"
        fits.HDUList([fits.PrimaryHDU(stacked.data, header),
                      fits.ImageHDU(stacked.weight, name="WEIGHT"),
                      fits.ImageHDU(stacked.count, name="COUNT")]).writeto(path)
        return path

    def verify(self, path):
        self.quality_flags = self.flag_bits(
            coverage=self.coverage < self.process_parameters.min_coverage)

    def images(self):
        """``(science, weight, mask)`` as `CalibratedExposure.images` gives them (mask:
        1 where no exposure counts)."""
        with fits.open(self.retrieve(), memmap=False) as hdul:
            count = hdul["COUNT"].data
            return hdul[0].data, hdul["WEIGHT"].data, (count == 0).astype(np.uint8)

    def count(self):
        """The exposure-count map."""
        return fits.getdata(self.retrieve(), "COUNT")

    def wcs(self):
        """The grid's `astropy.wcs.WCS`."""
        return WCS(fits.getheader(self.retrieve()))
