"""SourceList: the sources of a calibrated image, as rows of one database table.

A `SourceList` is a product like any other (made by `get`, with lineage, parameters and
a file: the catalogue as a FITS table); each of its sources is a `Source`, a row of the
one ``source`` table shared by every source list. The rows are written in bulk (``COPY``
on PostgreSQL) in the transaction that commits the list, so a list is never half there.
Sources carry the zones index (`targets.sky`), so that

>>> bright = (Source.mag < 20) & Source.cone(150.1, 2.2, 30 / 3600)

is a query like any other, answered by index range scans.
"""

import datetime

import numpy as np
from astropy.table import Table

from persistence import DBObject, insert_many, persistent

from .calibrated_exposure import CalibratedExposure
from .coadd import Coadd
from .dependency import dependency
from .imaging.extraction import FILTER_KERNELS, extract_catalogue
from .parameters import ProcessParameters
from .process import ProcessTarget
from .quality import QualityFlag, flags
from .raw import Chip, RawScienceFrame, mid_exposure_mjd
from .sky import SkyIndexed, sky_columns

__all__ = ["CoaddSourceList", "Source", "SourceList"]

class SourceListParameters(ProcessParameters):
    threshold = persistent("Detection threshold [sigma per pixel, after filtering]",
                           float, 3.0)
    minarea = persistent("Minimum area above the threshold [pixels]", int, 5)
    deblend_nthresh = persistent("Deblending thresholds (SExtractor's DEBLEND_NTHRESH)",
                                 int, 32)
    deblend_cont = persistent("Deblending contrast (SExtractor's DEBLEND_MINCONT)",
                              float, 0.005)
    filter_kernel = persistent("Detection filter: " + ", ".join(FILTER_KERNELS), str,
                               "default")
    min_sources = persistent("verify(): fewest sources; an image with fewer than the "
                             "stars an astrometric fit needs is empty or broken", int, 10)


class SourceList(ProcessTarget):
    """The sources of one CalibratedExposure: positions, fluxes, magnitudes, shapes.

    Asked for by the raw science frame (``SourceList.get(raw=frame)``): the exposure
    is calibrated first if it is missing or outdated.
    """

    SELECTORS = ("raw",)
    Parameters = SourceListParameters
    CODE_VERSION = "1"
    QUALITY_FLAGS = flags(
        QualityFlag(1, "few_sources", "fewer than min_sources sources: clouds, a shutter "
                    "that did not open, or a detection threshold set too high"))
    filename_prefix = "SL"

    @classmethod
    def part_references(cls):
        return [Source.sourcelist]

    exposure = dependency("The calibrated exposure the sources are extracted from",
                          CalibratedExposure, selectors=lambda s: {"raw": s["raw"]})

    raw = persistent("The raw science frame", RawScienceFrame, None)
    chip = persistent("The chip", Chip, None)
    filter = persistent("Filter name", str, "")
    date_obs = persistent("Start of the exposure (UTC)", datetime.datetime, None)
    mjd = persistent("Modified Julian date at mid-exposure (UTC)", float, None)
    exptime = persistent("Exposure time [s]", float, 0.0)
    n_sources = persistent("Number of sources", int, 0)
    ra = persistent("Right ascension of the image's centre [deg]", float, None)
    dec = persistent("Declination of the image's centre [deg]", float, None)
    footprint = persistent("The image's corners: ra1, dec1, ..., ra4, dec4 [deg]",
                           [float], [])
    limiting_mag = persistent("5-sigma limiting magnitude of a point source (AB)", float,
                              None)
    aperture_correction = persistent("Aperture to total magnitude correction [mag]",
                                     float, 0.0)

    @classmethod
    def new(cls, selectors):
        raw = selectors["raw"]
        return cls(raw=raw, chip=raw.chip, filter=raw.filter, date_obs=raw.date_obs,
                   exptime=raw.exptime, mjd=mid_exposure_mjd(raw.date_obs, raw.exptime))

    @classmethod
    def plan(cls, *, pars=None, depth=None, **selectors):
        """As `ProcessTarget.plan`; ``SourceList.plan(coadd=c)`` is that of
        `CoaddSourceList`."""
        if cls is SourceList and "coadd" in selectors:
            return CoaddSourceList.plan(pars=pars, depth=depth, **selectors)
        return super().plan(pars=pars, depth=depth, **selectors)

    def make(self, workdir):
        exposure = self.exposure
        science, weight, mask = exposure.images()
        return self._extract(workdir, science, weight, mask, exposure.wcs(),
                             zeropoint=exposure.zeropoint, exptime=exposure.exptime,
                             gain=self.raw.gain, saturation=self.raw.saturation,
                             centre=(exposure.ra, exposure.dec))

    def _extract(self, workdir, science, weight, mask, wcs, *, zeropoint, exptime, gain,
                 saturation, centre):
        """Extract the sources, set the list's attributes and write its file."""
        pars = self.process_parameters
        table = extract_catalogue(
            science, weight, mask, wcs, zeropoint=zeropoint, exptime=exptime,
            threshold=pars.threshold, minarea=pars.minarea,
            deblend_nthresh=pars.deblend_nthresh, deblend_cont=pars.deblend_cont,
            filter_kernel=pars.filter_kernel, gain=gain, saturation=saturation)
        ny, nx = science.shape
        corners = wcs.pixel_to_world_values([-0.5, nx - 0.5, nx - 0.5, -0.5],
                                            [-0.5, -0.5, ny - 0.5, ny - 0.5])
        self.footprint = [float(v) for pair in zip(*corners) for v in pair]
        self.ra, self.dec = centre
        self.n_sources = len(table)
        self.limiting_mag = table.meta["MAGLIM"]
        self.aperture_correction = table.meta["APCORR"]
        self._sources = table
        path = workdir / "sources.fits"
        table.meta.update(FILTER=self.filter, MJD=self.mjd, EXPTIME=self.exptime)
        table.write(path, format="fits")
        return path

    def verify(self, path):
        self.quality_flags = self.flag_bits(
            few_sources=self.n_sources < self.process_parameters.min_sources)

    def after_insert(self, connection):
        """Write the sources, in the transaction that commits the list."""
        table = getattr(self, "_sources", None)
        if table is None:
            table = Table.read(self.retrieve(), format="fits")
        columns = {name: np.asarray(table[name]) for name in SOURCE_COLUMNS}
        n = len(table)
        columns.update(sky_columns(columns["ra"], columns["dec"]))
        columns.update(sourcelist=[self.object_id] * n, mjd=[self.mjd] * n,
                       filter=[self.filter] * n)
        insert_many(Source, columns, connection=connection)
        self._sources = None

    def sources(self):
        """The list's sources, as a query (in ``number`` order)."""
        return (Source.sourcelist == self).order_by("number")

    def table(self):
        """The sources as an `astropy.table.Table`, read from the database."""
        columns = self.sources().columns(*SOURCE_COLUMNS)
        table = Table({name: columns[name] for name in SOURCE_COLUMNS})
        table.meta.update(FILTER=self.filter, MJD=self.mjd, EXPTIME=self.exptime,
                          SLIST=self.object_id)
        for name, unit in UNITS.items():
            table[name].unit = unit
        return table

    def write(self, path, format=None):
        """Write the sources to ``path``: FITS (``.fits``), VOTable (``.xml``,
        ``.vot``) or any format astropy's ``Table.write`` knows (``format=``)."""
        if format is None and str(path).endswith((".vot", ".xml")):
            format = "votable"
        self.table().write(path, format=format, overwrite=True)
        return path


class CoaddSourceList(SourceList):
    """The sources of a `Coadd` (``SourceList.get(coadd=c)``): as a `SourceList`, with
    magnitudes on the coadd's zeropoint, ``mjd`` the exposures' mean and ``exptime``
    their total; ``raw``, ``chip`` and ``exposure`` are empty."""

    SELECTORS = ("coadd",)
    filename_prefix = "CoaddSL"

    coadd = dependency("The coadd the sources are extracted from", Coadd,
                       selectors=lambda s: {k: getattr(s["coadd"], k)
                                            for k in Coadd.SELECTORS})

    @classmethod
    def dependencies(cls):
        """The coadd only: not the calibrated exposure of a single frame's list."""
        found = cls.__dict__.get("_dependencies")
        if found is None:
            found = cls._dependencies = {"coadd": cls.get_persistent_properties()["coadd"]}
        return found

    @classmethod
    def new(cls, selectors):
        coadd = selectors["coadd"]
        return cls(coadd=coadd, filter=coadd.filter, mjd=coadd.mjd, exptime=coadd.exptime,
                   date_obs=coadd.start)

    def make(self, workdir):
        coadd = self.coadd
        science, weight, mask = coadd.images()
        return self._extract(workdir, science, weight, mask, coadd.wcs(),
                             zeropoint=coadd.zeropoint, exptime=1.0, gain=coadd.gain,
                             saturation=None, centre=(coadd.ra, coadd.dec))


class Source(SkyIndexed, DBObject):
    """One source of a `SourceList`: a row of the one table of all sources."""

    INDEXES = (("zone", "ra"),)

    sourcelist = persistent("The source list it belongs to", SourceList, None)
    number = persistent("Its number in the list (1: brightest)", int, 0)
    mjd = persistent("Modified Julian date at mid-exposure (UTC), as the list's", float,
                     None)
    filter = persistent("Filter name, as the list's", str, "")
    x = persistent("Column: windowed centroid [pixel, 0-based]", float, None)
    y = persistent("Row: windowed centroid [pixel, 0-based]", float, None)
    xy_err = persistent("Centroid error per axis [pixel]", float, None)
    ra = persistent("Right ascension [deg]", float, None)
    dec = persistent("Declination [deg]", float, None)
    ra_err = persistent("Error of ra, along the great circle [arcsec]", float, None)
    dec_err = persistent("Error of dec [arcsec]", float, None)
    zone = persistent("Declination zone (the sky index; see targets.sky)", int, None)
    cx = persistent("Unit vector x (the sky index)", float, None)
    cy = persistent("Unit vector y (the sky index)", float, None)
    cz = persistent("Unit vector z (the sky index)", float, None)
    flux_aper = persistent("Flux in the aperture [ADU]", float, None)
    flux_aper_err = persistent("Error of flux_aper [ADU]", float, None)
    flux_auto = persistent("Kron flux [ADU]", float, None)
    flux_auto_err = persistent("Error of flux_auto [ADU]", float, None)
    mag = persistent("Kron magnitude (AB)", float, None)
    mag_err = persistent("Error of mag", float, None)
    mag_aper = persistent("Aperture magnitude, corrected to total (AB)", float, None)
    mag_aper_err = persistent("Error of mag_aper", float, None)
    flux = persistent("Aperture flux corrected to total [microjansky]", float, None)
    flux_err = persistent("Error of flux [microjansky]", float, None)
    a = persistent("Semi-major axis [pixel]", float, None)
    b = persistent("Semi-minor axis [pixel]", float, None)
    theta = persistent("Position angle of the major axis, from +x towards +y [rad]",
                       float, None)
    fwhm = persistent("Moffat FWHM [pixel] (bright isolated sources; NaN otherwise)",
                      float, None)
    flux_radius = persistent("Half-light radius [pixel]", float, None)
    snr = persistent("Signal to noise of the Kron flux", float, None)
    flags = persistent("Extraction flags: sep's, and 4 for saturated", int, 0)
    class_star = persistent("Star/galaxy indicator: 1 point source, 0 extended", float,
                            None)


SOURCE_COLUMNS = ("number", "x", "y", "xy_err", "ra", "dec", "ra_err", "dec_err",
                  "flux_aper", "flux_aper_err", "flux_auto", "flux_auto_err", "mag",
                  "mag_err", "mag_aper", "mag_aper_err", "flux", "flux_err", "a", "b",
                  "theta", "fwhm", "flux_radius", "snr", "flags", "class_star")
"""The columns of a source list, as the table, the file and the database have them."""

UNITS = {"x": "pix", "y": "pix", "xy_err": "pix", "ra": "deg", "dec": "deg",
         "ra_err": "arcsec", "dec_err": "arcsec", "flux_aper": "adu",
         "flux_aper_err": "adu", "flux_auto": "adu", "flux_auto_err": "adu", "mag": "mag",
         "mag_err": "mag", "mag_aper": "mag", "mag_aper_err": "mag", "flux": "uJy",
         "flux_err": "uJy", "a": "pix", "b": "pix", "theta": "rad", "fwhm": "pix",
         "flux_radius": "pix"}

