"""Reference catalogues: the external survey's stars that astrometric and photometric
calibration match against."""

import os

import numpy as np
from astropy.table import Table

from persistence import persistent

from .dataobject import DataObject, global_filename
from .errors import InstrumentError

__all__ = ["ReferenceCatalogue", "read_reference"]

REQUIRED_COLUMNS = ("ra", "dec", "ra_error", "dec_error")
"""Positions in degrees and their errors in arcsec; each magnitude column ``<filter>``
comes with ``<filter>_error``."""


_parsed = {}
"""Reference tables parsed so far, by file checksum."""


class ReferenceCatalogue(DataObject):
    """A table of reference stars (ECSV), selected by the sky area it covers.

    RA ranges do not wrap: a catalogue across RA 0 is ingested as two.
    """

    filename_suffix = ".ecsv"

    name = persistent("Name of the catalogue (its file's name by default)", str, "")
    ra_min = persistent("Smallest right ascension [deg]", float, None)
    ra_max = persistent("Largest right ascension [deg]", float, None)
    dec_min = persistent("Smallest declination [deg]", float, None)
    dec_max = persistent("Largest declination [deg]", float, None)
    filters = persistent("Filters with magnitudes", [str], [])
    n_stars = persistent("Number of stars", int, 0)
    usable = persistent("False once rejected: it is then never selected", bool, True,
                        mutable=True)

    def global_name(self, checksum):
        return global_filename("RefCat", instrument=self.name, checksum=checksum,
                               suffix=self.filename_suffix)

    def table(self):
        """The stars, as an `astropy.table.Table` (a copy of a table parsed once per
        process: every exposure of a field asks for it)."""
        parsed = _parsed.get(self.checksum)
        if parsed is None:
            if len(_parsed) >= 8:
                _parsed.clear()
            parsed = _parsed[self.checksum] = Table.read(self.retrieve(), format="ascii.ecsv")
        return parsed.copy()

    @classmethod
    def covering(cls, ra, dec):
        """The query for usable catalogues covering the position (degrees)."""
        return ((cls.ra_min <= ra) & (cls.ra_max >= ra) & (cls.dec_min <= dec)
                & (cls.dec_max >= dec) & (cls.usable == True))  # noqa: E712


def read_reference(path):
    """A new, uncommitted `ReferenceCatalogue` described from the ECSV file at ``path``.

    Raises
    ------
    InstrumentError
        Raised if the file is not an ECSV table with the required columns.
    """
    try:
        table = Table.read(path, format="ascii.ecsv")
    except Exception as err:  # astropy raises many kinds for a malformed table
        raise InstrumentError(f"{path}: not a readable ECSV reference catalogue ({err}); "
                              "write it with astropy: table.write(path, format='ascii.ecsv')",
                              filename=os.fspath(path)) from err
    missing = [c for c in REQUIRED_COLUMNS if c not in table.colnames]
    if missing or len(table) == 0:
        raise InstrumentError(
            f"{path}: a reference catalogue needs rows and the columns "
            f"{', '.join(REQUIRED_COLUMNS)} (degrees, and arcsec for the errors) plus "
            f"<filter> and <filter>_error magnitudes; missing: {', '.join(missing) or 'rows'}",
            filename=os.fspath(path))
    filters = [c for c in table.colnames if f"{c}_error" in table.colnames
               and c not in ("ra", "dec")]
    ra, dec = np.asarray(table["ra"], float), np.asarray(table["dec"], float)
    stem = os.path.splitext(os.path.basename(path))[0]
    return ReferenceCatalogue(name=stem, ra_min=float(ra.min()), ra_max=float(ra.max()),
                              dec_min=float(dec.min()), dec_max=float(dec.max()),
                              filters=filters, n_stars=len(table))
