"""NightReport: every science exposure of a night calibrated, and a table of how well.

Asking for the report is how a night is reduced: its plan holds every
`CalibratedExposure` of the night and their calibrations, so the DPU can make
independent branches in parallel.
"""

from astropy.table import Table

from persistence import persistent

from .calibrated_exposure import CalibratedExposure
from .dependency import dependency
from .process import ProcessTarget
from .raw import RawScienceFrame

__all__ = ["NightReport"]

COLUMNS = ("object_id", "filter", "object", "date_obs", "exptime", "airmass", "seeing",
           "background", "astrometric_rms", "n_reference_stars", "zeropoint",
           "zeropoint_error", "quality_flags")
"""The report's columns: attributes of each `CalibratedExposure`."""


def _science_frames(selectors):
    frames = ((RawScienceFrame.instrument == selectors["instrument"])
              & (RawScienceFrame.night == selectors["night"])
              & (RawScienceFrame.usable == True))  # noqa: E712
    return [{"raw": raw} for raw in list(frames)]


class NightReport(ProcessTarget):
    """The calibrated exposures of one night of one instrument, summarised in an ECSV
    table (a row per exposure and chip).

    It sets no quality flags: it judges nothing itself, but reports each exposure's
    (the ``quality_flags`` column, and `n_flagged`); flagging the report would hide the
    summary a person reads to find them.
    """

    SELECTORS = ("instrument", "night")
    filename_suffix = ".ecsv"

    instrument = persistent("Name of the instrument", str, "")
    night = persistent("The night: local date at its start, 'YYYY-MM-DD'", str, "")
    exposures = dependency("The night's calibrated exposures, flagged ones too (it reports "
                           "them)", CalibratedExposure, many=True,
                           selectors=_science_frames, accept_flagged=True)
    n_exposures = persistent("Number of calibrated exposures", int, 0)
    n_flagged = persistent("Exposures with quality flags set", int, 0)

    def make(self, workdir):
        rows = [[str(e.chip.name)] + [_plain(getattr(e, name)) for name in COLUMNS]
                for e in self.exposures]
        table = Table(rows=rows or None, names=("chip",) + COLUMNS)
        self.n_exposures = len(rows)
        self.n_flagged = sum(1 for e in self.exposures if e.quality_flags)
        path = workdir / "night.ecsv"
        table.write(path, format="ascii.ecsv")
        return path

    def table(self):
        """The report as an `astropy.table.Table`."""
        return Table.read(self.retrieve(), format="ascii.ecsv")

    def filename_parts(self):
        return {"instrument": self.instrument, "time": self.night}


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value
