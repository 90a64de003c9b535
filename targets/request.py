"""Processing requests: what a person asks for in words a survey uses (a target class,
an instrument, chips, a filter, a range of nights, a position), turned into the
targets to plan and get.

``Class.get(**selectors)`` asks for one product. A `ProcessingRequest` asks for every
product of a class that the raw data in a selection calls for: the master bias of each
chip and night, the calibrated exposure of each science frame in ``r`` over a week, the
objects around a position. The web's target-processing form and its job queue work
with requests; a job records its request as JSON (`ProcessingRequest.to_json`).
"""

import dataclasses
import datetime
import json

from persistence import registered_class

from .plan import plan_targets, target_from_spec
from .raw import RawFlatFrame, RawFrame, RawScienceFrame

__all__ = ["REQUESTABLE", "ProcessingRequest"]

REQUESTABLE = {
    "MasterBias": ("instrument", "chip", "nights"),
    "HotPixelMap": ("instrument", "chip", "nights"),
    "MasterFlat": ("instrument", "chip", "filter", "nights"),
    "ColdPixelMap": ("instrument", "chip", "filter", "nights"),
    "CalibratedExposure": ("instrument", "chip", "filter", "nights", "position"),
    "SourceList": ("instrument", "chip", "filter", "nights", "position"),
    "NightReport": ("instrument", "nights"),
    "Coadd": ("filter", "nights", "position"),
    "Object": ("position",),
}
"""The classes a request can ask for, with the selections each takes: ``nights`` is
a range of nights, ``position`` a sky position with a radius (for `Coadd` only the
grid's centre)."""

_SELECTIONS = {"instrument": "instrument", "chip": "chip", "filter": "filter",
               "first_night": "nights", "last_night": "nights", "ra": "position",
               "dec": "position", "radius": "position"}
"""The fields of a request, by the selection of `REQUESTABLE` they belong to."""

_MAX_TARGETS = 5000
"""More targets than this in one request is a mistake in the selection, not a plan."""


@dataclasses.dataclass
class ProcessingRequest:
    """Everything of class ``target`` that the raw data in a selection calls for.

    Selections a class does not take (see `REQUESTABLE`) are dropped; empty ones
    select everything. Nights are the local dates at their start (``'2024-03-11'``),
    both ends included.

    Examples
    --------
    >>> request = ProcessingRequest("CalibratedExposure", instrument="SIMCAM",
    ...                             chip="ccd1", filter="r", first_night="2024-03-11")
    >>> print(request.plan())            # every r exposure of ccd1 that night
    """

    target: str
    instrument: str = ""
    chip: str = ""
    filter: str = ""
    first_night: str = ""
    last_night: str = ""
    ra: float = None
    dec: float = None
    radius: float = None
    """Degrees."""
    pars: dict = dataclasses.field(default_factory=dict)
    """Process parameters overriding those in force, for the requested targets."""
    depth: int = None
    """How many levels of dependencies `plan` checks; None for all."""
    only: list = None
    """`targets.plan.target_spec` of the nodes to get, when a person ticked some;
    None for every target of the request."""

    def __post_init__(self):
        if self.target not in REQUESTABLE:
            raise ValueError(f"{self.target!r} cannot be requested; choose one of "
                             f"{', '.join(REQUESTABLE)}")
        for name in ("first_night", "last_night"):
            text = getattr(self, name)
            if text:
                try:
                    datetime.date.fromisoformat(text)
                except ValueError:
                    raise ValueError(f"{name} {text!r} is not a date such as "
                                     "2024-03-11 (the local date at the night's start)"
                                     ) from None
        if self.first_night and self.last_night and self.last_night < self.first_night:
            raise ValueError(f"the nights run from {self.first_night} to "
                             f"{self.last_night}: the last is before the first")
        if self.ra is not None and not 0 <= self.ra < 360 \
                or self.dec is not None and not -90 <= self.dec <= 90:
            raise ValueError(f"position ({self.ra}, {self.dec}) is not on the sky: ra in "
                             "[0, 360), dec in [-90, 90] degrees")
        if self.radius is not None and not 0 < self.radius <= 10:
            raise ValueError(f"radius {self.radius} must be above 0 and at most 10 degrees")
        if self.depth is not None and not 0 <= self.depth <= 100:
            raise ValueError(f"depth {self.depth} must be between 0 and 100")
        takes = REQUESTABLE[self.target]
        for name, selection in _SELECTIONS.items():
            if selection not in takes:
                setattr(self, name, None if name in ("ra", "dec", "radius") else "")
        if self.target in ("Coadd", "Object") and (self.ra is None or self.dec is None):
            raise ValueError(f"a {self.target} request needs a position: give ra and dec")
        if self.target == "Object" and self.radius is None:
            raise ValueError("an Object request needs a radius (degrees) around ra, dec")
        if self.target == "Coadd" and not self.filter:
            raise ValueError("a Coadd request needs a filter")
        try:
            self.cls.Parameters.in_force(self.pars)
        except (AttributeError, TypeError) as err:  # an unknown name, a wrong type
            raise ValueError(f"process parameters of {self.target}: {err}") from None

    @property
    def cls(self):
        """The class asked for."""
        return registered_class(self.target)

    def describe(self):
        """The request in words, for a job's label."""
        parts = [f"{name}={getattr(self, name)}" for name in
                 ("instrument", "chip", "filter", "first_night", "last_night", "ra", "dec",
                  "radius") if getattr(self, name) not in ("", None)]
        if self.pars:
            parts.append("pars " + ", ".join(f"{k}={v!r}" for k, v in self.pars.items()))
        if self.only is not None:
            parts.append(f"{len(self.only)} ticked")
        return f"{self.target}({', '.join(parts)})"

    # -- what it asks for -----------------------------------------------------------

    def targets(self):
        """``[(cls, selectors)]``: the targets the selection calls for, checked.

        Raises
        ------
        ValueError
            Raised if the selection finds no raw data to make anything from, or too
            much; the message says what was looked for.
        """
        if self.only is not None:
            return [target_from_spec(spec) for spec in self.only]
        name = self.target
        if name == "Object":
            from .source_list import SourceList

            cls, found = SourceList, [{"raw": f} for f in self._covering()]
        elif name == "Coadd":
            from .coadd import Coadd

            cls, found = Coadd, [{"ra": self.ra, "dec": self.dec, "filter": self.filter,
                                  "start": self._time_range()[0],
                                  "end": self._time_range()[1]}]
        elif name in ("CalibratedExposure", "SourceList"):
            cls = self.cls
            frames = (self._covering() if self.ra is not None
                      else list(self._frames(RawScienceFrame)))
            found = [{"raw": f} for f in frames]
        elif name == "NightReport":
            cls = self.cls
            nights = sorted({(f.instrument, f.night) for f in self._frames(RawScienceFrame)})
            found = [{"instrument": i, "night": n} for i, n in nights]
        else:  # a calibration of a chip's night (and filter)
            cls = self.cls
            found = self._calibrations(cls)
        if not found:
            raise ValueError(f"no raw data matches {self.describe()}: nothing to make. "
                             "Widen the selection (nights, chip, filter, position), or "
                             "ingest the raw data first")
        if len(found) > _MAX_TARGETS:
            raise ValueError(f"{self.describe()} asks for {len(found)} targets, more than "
                             f"{_MAX_TARGETS}; narrow the selection")
        return [(cls, cls.check_selectors(selectors)) for selectors in found]

    def plan(self):
        """The plan of every target of the request (`targets.Plan`, several roots)."""
        return plan_targets(self.targets(), pars=self.pars or None, depth=self.depth)

    def _frames(self, cls):
        query = cls.usable == True  # noqa: E712
        if self.instrument:
            query = query & (cls.instrument == self.instrument)
        if self.chip:
            query = query & (cls.chip.name == self.chip)
        if self.filter and cls is not RawFrame:  # biases and darks have no filter
            query = query & (cls.filter == self.filter)
        if self.first_night:
            query = query & (cls.night >= self.first_night)
        if self.last_night:
            query = query & (cls.night <= self.last_night)
        return query.order_by("date_obs")

    def _covering(self):
        radius = self.radius or 0.0
        where = self._frames(RawScienceFrame)
        # A minute of arc more, for the telescope's pointing error (as Object.get).
        return RawScienceFrame.covering(self.ra, self.dec, radius + 1 / 60, where=where)

    def _time_range(self):
        """``[start, end)`` of the nights (UTC, noon to noon); all time if open."""
        first = (datetime.date.fromisoformat(self.first_night) if self.first_night
                 else datetime.date(1900, 1, 1))
        last = (datetime.date.fromisoformat(self.last_night) if self.last_night
                else datetime.date(2999, 12, 31))
        noon = datetime.time(12)
        return (datetime.datetime.combine(first, noon),
                datetime.datetime.combine(last + datetime.timedelta(days=1), noon))

    def _calibrations(self, cls):
        """One target per chip and night (and filter, for flats) with raw data: its
        ``time`` the first raw frame of that night."""
        by_filter = "filter" in cls.SELECTORS
        sources = [RawFlatFrame, RawScienceFrame] if by_filter else [RawFrame]
        first = {}
        for raw_class in sources:
            for frame in self._frames(raw_class):
                key = (frame.chip.object_id, frame.filter if by_filter else None, frame.night)
                if key not in first or frame.date_obs < first[key].date_obs:
                    first[key] = frame
        found = []
        for (_, filter_name, _), frame in sorted(first.items(),
                                                 key=lambda kv: (kv[0][2], kv[1].chip.name,
                                                                 kv[0][1] or "")):
            selectors = {"chip": frame.chip, "time": frame.date_obs}
            if by_filter:
                selectors["filter"] = filter_name
            found.append(selectors)
        return found

    # -- as a job records it ----------------------------------------------------------

    def to_json(self):
        """The request as JSON text."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """The request recorded by `to_json`.

        Raises
        ------
        ValueError
            Raised if ``text`` is not a request.
        """
        try:
            values = json.loads(text)
            return cls(**values)
        except (TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"not a processing request: {err}") from None

