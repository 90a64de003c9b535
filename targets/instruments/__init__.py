"""Instruments as data: how to read a camera's raw FITS files.

An instrument is a YAML file, not code. The built-in ones live in this package
(``simcam``: AWE's simulated mosaic camera; ``generic``: a single-CCD camera with the
common ``IMAGETYP``/``BIASSEC``/``TRIMSEC``/``GAIN``/``RDNOISE`` keywords); a user's own
file may be anywhere. Adding a telescope means writing one such file.

The schema (see ``simcam.yaml`` and ``generic.yaml`` for complete examples)::

    name: MYCAM                   # the instrument's name (required)
    description: ...              # one line
    match:                        # the file is MYCAM's if its primary header matches
      - {INSTRUME: "MyCam*"}      # any rule: every keyword's value matches the
      - {TELESCOP: "T80", INSTRUME: "CCD"}   # case-insensitive shell pattern
    site:
      name: ...
      latitude: -29.26            # degrees
      longitude: -70.74           # degrees east
      height: 2400                # metres
      timezone: America/Santiago  # IANA name; a night runs noon to noon local time.
                                  # null: local mean time from the longitude, taken
                                  # from longitude_keywords in the header if given
    keywords:                     # observation -> header keyword, or a list of
      obstype: IMAGETYP           # alternatives of which the first present wins
      date_obs: DATE-OBS          # ISO date and time (UTC), or a date alone when
      time_obs: [TIME-OBS, UT]    # the time is in time_obs
      mjd_obs: MJD-OBS            # used when date_obs is missing
      exptime: EXPTIME            # seconds
      filter: FILTER
      object: OBJECT
      airmass: [AIRMASS, SECZ]
      ra: [RA, RA_OBS]            # degrees, or sexagesimal hours ("22:04:08")
      dec: [DEC, DEC_OBS]         # degrees, or sexagesimal degrees
    required:                     # key: observation types that need it, or all
      obstype: all
      filter: [flat, science]
    obstypes:                     # header value (case-insensitive shell pattern)
      bias: [bias, zero]          # -> bias, dark, flat or science
      flat: [flat, "dome*"]
      science: [object]
    detectors:
      extensions: image           # image: each image extension is a detector (a
                                  # multi-extension mosaic); single: the one image
      keywords:                   # per detector, read from the detector's header,
        name: EXTNAME             # then the primary header
        gain: GAIN                # e-/ADU
        read_noise: RDNOISE       # e-
        saturation: SATURATE      # ADU
        overscan: BIASSEC         # FITS section [x1:x2,y1:y2]
        data: [TRIMSEC, DATASEC]  # FITS section
      default: {gain: 2.0, read_noise: 5.0, saturation: 65535,
                overscan: "[2049:2080,1:4096]", data: "[1:2048,1:4096]"}
                                  # used when the header lacks the keyword; null means
                                  # unknown (overscan: none; data: the whole image)
      list:                       # per detector name, over the defaults
        ccd1: {gain: 1.9}
    filters:                      # filter name -> header values meaning it
      g: {aliases: [g, "g'"], zeropoint: 26.0, extinction: 0.18, sky: 22.0}

Times are UTC, as naive `datetime.datetime` objects (the database's convention).

Examples
--------
>>> from astropy.io import fits
>>> camera = Instrument.load("simcam")                       # doctest: +SKIP
>>> with fits.open("SIMCAM.2024-03-11T23:50:00.fits") as hdul:  # doctest: +SKIP
...     for frame in camera.frames(hdul, "SIMCAM.2024-03-11T23:50:00.fits"):
...         print(frame.detector, frame.obstype, frame.night, frame.gain)
"""

import dataclasses
import datetime
import fnmatch
import glob
import os
import warnings
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from ..errors import InstrumentError
from ..imaging.ccd import fits_section

__all__ = [
    "OBSTYPES",
    "FrameInfo",
    "Instrument",
    "builtin_instruments",
    "instrument_for",
    "night_of",
    "night_window",
    "read_frames",
]

OBSTYPES = ("bias", "dark", "flat", "science")
"""The observation types a raw frame can have."""

_HERE = os.path.dirname(os.path.abspath(__file__))
_DOCS = "see the instrument file format in the docstring of targets.instruments"
_OBSERVATION_KEYS = ("obstype", "date_obs", "time_obs", "mjd_obs", "exptime", "filter",
                     "object", "airmass", "ra", "dec")
_DETECTOR_KEYS = ("name", "gain", "read_noise", "saturation", "overscan", "data")
_NOON = datetime.time(12)
_loaded = {}
"""Instruments loaded so far, by file path and modification time."""


@dataclasses.dataclass(frozen=True)
class FrameInfo:
    """What an instrument's rules read from one detector of one raw file.

    Attributes are ``None`` where the header does not say and the instrument file
    does not require it.
    """

    filename: str
    """The raw file."""
    extension: int
    """Index of the detector's HDU in the file."""
    extname: str
    """The HDU's EXTNAME (``'PRIMARY'`` for the primary)."""
    instrument: str
    """The instrument's name."""
    detector: str
    """The detector's name, e.g. ``'ccd1'``."""
    obstype: str
    """``'bias'``, ``'dark'``, ``'flat'`` or ``'science'``."""
    date_obs: datetime.datetime
    """Start of the exposure, UTC (naive)."""
    night: datetime.date
    """Local date at the start of the noon-to-noon night the exposure is in."""
    exptime: float
    """Exposure time, seconds."""
    filter: str
    """Filter name (an alias resolved to the instrument's name for it)."""
    object: str
    """The OBJECT keyword."""
    airmass: float
    ra: float
    """Pointing right ascension, degrees."""
    dec: float
    """Pointing declination, degrees."""
    gain: float
    """e-/ADU."""
    read_noise: float
    """e-."""
    saturation: float
    """ADU."""
    overscan: tuple
    """``(row slice, column slice)`` of the overscan, or ``None``."""
    data: tuple
    """``(row slice, column slice)`` of the light-sensitive data."""
    shape: tuple
    """``(rows, columns)`` of the detector's raw image."""


class Instrument:
    """A camera's rules for reading its raw FITS files, loaded from an instrument file.

    Parameters
    ----------
    spec : `dict`
        The instrument file's content.
    source : `str`
        Where it came from, named in errors.

    Raises
    ------
    InstrumentError
        Raised if ``spec`` is not a valid instrument description.
    """

    def __init__(self, spec, source="<dict>"):
        self.source = str(source)
        self.spec = _validated(spec, self.source)
        self.name = str(self.spec["name"])
        self.description = str(self.spec.get("description", ""))
        self.site = dict(self.spec.get("site") or {})
        self.filters = dict(self.spec.get("filters") or {})
        self.simulation = dict(self.spec.get("simulation") or {})
        detectors = self.spec["detectors"]
        self._det_keywords = {k: _alternatives(v)
                              for k, v in (detectors.get("keywords") or {}).items()}
        self._det_default = dict(detectors.get("default") or {})
        self._det_list = {str(k): dict(v or {})
                          for k, v in (detectors.get("list") or {}).items()}
        self._keywords = {k: _alternatives(v) for k, v in self.spec["keywords"].items()}

    def __repr__(self):
        return f"Instrument({self.name!r}, source={self.source!r})"

    # -- loading -------------------------------------------------------------------

    @classmethod
    def load(cls, name_or_path):
        """Load a built-in instrument by name (``'simcam'``, ``'generic'``) or a user's
        instrument file (YAML) by path.

        Raises
        ------
        InstrumentError
            Raised if there is no such built-in or file, or the file is not valid.
        """
        text = os.fspath(name_or_path)
        builtin = os.path.join(_HERE, f"{text.lower()}.yaml")
        if os.sep not in text and "." not in text and os.path.isfile(builtin):
            path = builtin
        elif os.path.isfile(text):
            path = text
        else:
            raise InstrumentError(
                f"no instrument {text!r}: it is neither a built-in instrument "
                f"({', '.join(builtin_instruments())}) nor an instrument file; give the "
                f"path of a YAML file ({_DOCS})", filename=text)
        # Ingest asks once per raw file: parse a file again only when it changed.
        key = (os.path.abspath(path), os.stat(path).st_mtime_ns)
        found = _loaded.get(key)
        if found is None:
            try:
                with open(path, encoding="utf-8") as stream:
                    spec = yaml.safe_load(stream)
            except yaml.YAMLError as err:
                raise InstrumentError(
                    f"instrument file {path} is not valid YAML: {' '.join(str(err).split())}; "
                    f"fix it ({_DOCS})", filename=path) from err
            found = _loaded[key] = cls(spec, path)
        return found

    # -- matching ------------------------------------------------------------------

    def matches(self, header):
        """Whether a primary ``header`` belongs to this instrument by its match rules."""
        for rule in self.spec.get("match") or []:
            if all(_matches(header.get(key), pattern) for key, pattern in rule.items()):
                return True
        return False

    # -- nights --------------------------------------------------------------------

    def timezone(self, header=None):
        """The `datetime.tzinfo` of the observatory: its IANA time zone, else local mean
        time from its longitude (or the header's), else UTC."""
        name = self.site.get("timezone")
        if name:
            return ZoneInfo(name)
        longitude = self.site.get("longitude")
        if longitude is None and header is not None:
            for keyword in _alternatives(self.site.get("longitude_keywords")):
                value = header.get(keyword)
                if value is not None:
                    try:
                        longitude = _angle(value, hours=False)
                    except ValueError:
                        continue
                    break
        if longitude is None:
            return datetime.timezone.utc
        longitude = (float(longitude) + 180.0) % 360.0 - 180.0
        return datetime.timezone(datetime.timedelta(minutes=round(longitude * 4)))

    def night(self, date_obs, header=None):
        """The night of ``date_obs`` (UTC): see `night_of`."""
        return night_of(date_obs, self.timezone(header))

    def night_window(self, night, header=None):
        """``(start, end)`` in UTC (naive) of ``night``: see `night_window`."""
        return night_window(night, self.timezone(header))

    # -- reading frames ------------------------------------------------------------

    def frames(self, hdul, filename=None):
        """One `FrameInfo` per detector of an open FITS file.

        Parameters
        ----------
        hdul : `astropy.io.fits.HDUList`
            The raw file, opened.
        filename : `str`, optional
            Its name, for the records and errors (default: the file's own).

        Raises
        ------
        InstrumentError
            Raised if the file has no detector image, or a required keyword is missing
            or unreadable; the message names file, extension, keyword and remedy.
        """
        filename = str(filename or getattr(hdul, "filename", lambda: None)() or "<memory>")
        primary = hdul[0].header
        records = []
        for index in self._detector_extensions(hdul, filename):
            header = hdul[index].header
            look = _Lookup(filename, index, header, primary)
            records.append(self._frame(look, index))
        return records

    def _detector_extensions(self, hdul, filename):
        images = [i for i, hdu in enumerate(hdul)
                  if hdu.header.get("NAXIS", 0) == 2 and hdu.is_image]
        if not images:
            raise InstrumentError(
                f"{filename}: no image HDU (NAXIS = 2) in the file; is it a raw frame?",
                filename=filename, extension=0, keyword="NAXIS")
        if self.spec["detectors"].get("extensions", "image") == "single":
            return images[:1]
        return [i for i in images if i > 0] or images[:1]

    def _frame(self, look, index):
        kw = self._keywords
        obstype = self._obstype(look)
        need = self._required(obstype)

        date_obs = self._date_obs(look, need)
        exptime = look.number(kw.get("exptime"), "exptime" in need)
        filter_value = look.text(kw.get("filter"), "filter" in need)
        airmass = look.number(kw.get("airmass"), "airmass" in need)
        ra = look.angle(kw.get("ra"), "ra" in need, hours=True)
        dec = look.angle(kw.get("dec"), "dec" in need, hours=False)
        obj = look.text(kw.get("object"), "object" in need)

        det = {}
        name = look.text(self._det_keywords.get("name"), False, detector=True)
        name = name or self._det_default.get("name") or look.extname.lower()
        defaults = {**self._det_default, **self._det_list.get(name, {})}
        for key in ("gain", "read_noise", "saturation"):
            det[key] = look.number(self._det_keywords.get(key), False, detector=True)
            if det[key] is None and defaults.get(key) is not None:
                det[key] = float(defaults[key])
        shape = (look.header.get("NAXIS2"), look.header.get("NAXIS1"))
        for key in ("overscan", "data"):
            det[key] = look.section(self._det_keywords.get(key), defaults.get(key),
                                    self.source, shape)
        if det["data"] is None:
            det["data"] = (slice(0, shape[0]), slice(0, shape[1]))
        return FrameInfo(
            filename=look.filename, extension=index, extname=look.extname,
            instrument=self.name, detector=str(name), obstype=obstype,
            date_obs=date_obs, night=self.night(date_obs, look.primary),
            exptime=exptime, filter=self.filter_name(filter_value), object=obj,
            airmass=airmass, ra=ra, dec=dec, gain=det["gain"],
            read_noise=det["read_noise"], saturation=det["saturation"],
            overscan=det["overscan"], data=det["data"], shape=shape)

    def _required(self, obstype):
        return {key for key, types in (self.spec.get("required") or {}).items()
                if types == "all" or obstype in (types or [])}

    def _obstype(self, look):
        keywords = self._keywords.get("obstype")
        value = look.text(keywords, True)
        found = self.obstype(value)
        if found is None:
            raise InstrumentError(
                f"{look.where}: {look.found_keyword(keywords)} = {value!r} is not an "
                f"observation type {self.name} knows; add it under 'obstypes' (bias, dark, "
                f"flat or science) in an instrument file ({_DOCS})",
                filename=look.filename, extension=look.extension,
                keyword=look.found_keyword(keywords))
        return found

    def obstype(self, value):
        """The observation type (`OBSTYPES`) a header value means, or ``None``."""
        text = str(value).strip().lower()
        rules = {t: [str(p).lower() for p in (self.spec.get("obstypes") or {}).get(t) or []]
                 for t in OBSTYPES}
        for exact in (True, False):
            for obstype, patterns in rules.items():
                for pattern in patterns:
                    is_glob = any(c in pattern for c in "*?[")
                    if exact and not is_glob and text == pattern:
                        return obstype
                    if not exact and is_glob and fnmatch.fnmatchcase(text, pattern):
                        return obstype
        return None

    def filter_name(self, value):
        """The instrument's name for a header filter value (its aliases resolved)."""
        if value is None:
            return None
        text = str(value).strip()
        for name, info in self.filters.items():
            aliases = [str(a).lower() for a in (info or {}).get("aliases") or []]
            if text.lower() == str(name).lower() or text.lower() in aliases:
                return str(name)
        return text

    def _date_obs(self, look, need):
        kw = self._keywords
        date = look.text(kw.get("date_obs"), False)
        if date is None:
            mjd = look.number(kw.get("mjd_obs"), False)
            if mjd is not None:
                return _naive_utc(_time(mjd, format="mjd", scale="utc"))
            if "date_obs" in need:
                keys = list(kw.get("date_obs") or []) + list(kw.get("mjd_obs") or [])
                look.missing(keys, "the start of the exposure (UTC)")
            return None
        date = date.strip()
        if "T" not in date and " " not in date.strip():
            time = look.text(kw.get("time_obs"), False)
            if time is None:
                look.missing(kw.get("time_obs"),
                             f"the time of day, since {look.found_keyword(kw.get('date_obs'))}"
                             f" = {date!r} holds a date only")
            date = f"{_fits_date(date)}T{time.strip()}"
        try:
            return _naive_utc(_time(date.replace(" ", "T"), format="isot", scale="utc"))
        except ValueError as err:
            look.invalid(kw.get("date_obs"), date, "an ISO date and time (UTC)", err)


class _Lookup:
    """Reads values from a detector's header, then the primary header, for one frame."""

    def __init__(self, filename, extension, header, primary):
        self.filename, self.extension = filename, extension
        self.header, self.primary = header, primary
        self.extname = str(header.get("EXTNAME", "PRIMARY" if extension == 0 else extension))
        self.where = f"{filename}[{extension}]" + (
            f" ({self.extname})" if self.extname not in ("PRIMARY", str(extension)) else "")

    def raw(self, keywords, required, detector=False, what=None):
        headers = (self.header, self.primary) if self.extension else (self.header,)
        for keyword in keywords or []:
            for header in headers:
                value = header.get(keyword)
                if value is not None and not (isinstance(value, str) and not value.strip()):
                    return keyword, value
        if required:
            self.missing(keywords, what)
        return None, None

    def found_keyword(self, keywords):
        keyword, _ = self.raw(keywords, False)
        return keyword or "/".join(keywords or ["?"])

    def missing(self, keywords, what=None):
        keywords = list(keywords or [])
        names = " or ".join(keywords) if keywords else "(none configured)"
        raise InstrumentError(
            f"{self.where}: keyword {names} is missing" + (f" ({what})" if what else "")
            + "; add it to the header, or write an instrument file that names the keyword "
            f"this camera uses ({_DOCS})",
            filename=self.filename, extension=self.extension,
            keyword=keywords[0] if keywords else None)

    def invalid(self, keywords, value, expected, err=None):
        keyword = self.found_keyword(keywords)
        raise InstrumentError(
            f"{self.where}: keyword {keyword} = {value!r} is not {expected}; correct the "
            f"header, or map another keyword in an instrument file ({_DOCS})",
            filename=self.filename, extension=self.extension, keyword=keyword) from err

    def text(self, keywords, required, detector=False):
        _, value = self.raw(keywords, required, detector)
        return None if value is None else str(value).strip()

    def number(self, keywords, required, detector=False):
        keyword, value = self.raw(keywords, required, detector)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            self.invalid([keyword], value, "a number", err)

    def angle(self, keywords, required, hours):
        keyword, value = self.raw(keywords, required)
        if value is None:
            return None
        try:
            return _angle(value, hours)
        except ValueError as err:
            self.invalid([keyword], value, "an angle in degrees or sexagesimal "
                         + ("hours" if hours else "degrees"), err)

    def section(self, keywords, default, source, shape):
        keyword, value = self.raw(keywords, False)
        if value is None and default is None:
            return None
        text = value if value is not None else default
        try:
            rows, cols = fits_section(str(text))
        except ValueError as err:
            if value is None:
                raise InstrumentError(f"instrument file {source}: {err}", filename=source,
                                      keyword=str(text)) from err
            self.invalid([keyword], value, "a FITS section [x1:x2,y1:y2]", err)
        if shape[0] is not None and (rows.stop > shape[0] or cols.stop > shape[1]):
            where = f"{keyword} = {value!r}" if value is not None else f"default {text!r}"
            raise InstrumentError(
                f"{self.where}: section {where} reaches beyond the {shape[1]}x{shape[0]} "
                f"image; correct it in the header or the instrument file ({_DOCS})",
                filename=self.filename, extension=self.extension, keyword=keyword)
        return rows, cols


def night_of(time, zone):
    """The night of ``time`` (UTC, naive or aware) in time zone ``zone``: the local date
    at the start of the noon-to-noon local night that contains it."""
    local = _as_utc(time).astimezone(zone)
    return (local - datetime.timedelta(hours=12)).date()


def night_window(night, zone):
    """``(start, end)`` in UTC (naive) of ``night`` in time zone ``zone``: local noon to
    the next local noon. Around a daylight-saving change the window lasts 23 or 25 hours.
    """
    start, end = (datetime.datetime.combine(day, _NOON, tzinfo=zone)
                  for day in (night, night + datetime.timedelta(days=1)))
    return tuple(t.astimezone(datetime.timezone.utc).replace(tzinfo=None)
                 for t in (start, end))


def builtin_instruments():
    """The names of the built-in instruments."""
    return sorted(os.path.splitext(os.path.basename(p))[0]
                  for p in glob.glob(os.path.join(_HERE, "*.yaml")))


def instrument_for(hdul, filename=None, instruments=None):
    """The instrument whose match rules claim a file, else ``generic`` for a file with one
    image.

    Parameters
    ----------
    hdul : `astropy.io.fits.HDUList`
        The file, opened.
    filename : `str`, optional
        Its name, for errors.
    instruments : iterable of `Instrument` or `str`, optional
        Instruments (objects, built-in names or file paths) to try before the built-ins.

    Raises
    ------
    InstrumentError
        Raised if no instrument claims a file with several images.
    """
    candidates = [i if isinstance(i, Instrument) else Instrument.load(i)
                  for i in (instruments or [])]
    candidates += [Instrument.load(n) for n in builtin_instruments() if n != "generic"]
    header = hdul[0].header
    for instrument in candidates:
        if instrument.matches(header):
            return instrument
    images = [h for h in hdul if h.header.get("NAXIS", 0) == 2 and h.is_image]
    if len(images) <= 1:
        return Instrument.load("generic")
    filename = filename or "<memory>"
    raise InstrumentError(
        f"{filename}: no instrument file claims this file of {len(images)} images "
        f"(INSTRUME = {header.get('INSTRUME')!r}, TELESCOP = {header.get('TELESCOP')!r}); "
        f"write an instrument file for it with a 'match' rule and give it ({_DOCS})",
        filename=filename, extension=0, keyword="INSTRUME")


def read_frames(path, instrument=None, instruments=None):
    """Open a raw file and read its frames: ``(instrument, [FrameInfo, ...])``.

    Parameters
    ----------
    path : `str` or path-like
        The raw FITS file.
    instrument : `Instrument` or `str`, optional
        Read it with this instrument; by default the one `instrument_for` picks.
    instruments : iterable, optional
        Passed to `instrument_for`.

    Raises
    ------
    InstrumentError
        Raised if the file is missing, not FITS, truncated, or lacks a required keyword.
    """
    path = os.fspath(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)  # truncation: checked below
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                _check_complete(hdul, path)
                if instrument is None:
                    instrument = instrument_for(hdul, path, instruments)
                elif not isinstance(instrument, Instrument):
                    instrument = Instrument.load(instrument)
                return instrument, instrument.frames(hdul, path)
    except InstrumentError:
        raise
    except FileNotFoundError as err:
        raise InstrumentError(f"{path}: no such file; check the path", filename=path) from err
    except (OSError, ValueError) as err:
        raise InstrumentError(
            f"{path}: not a readable FITS file ({' '.join(str(err).split())}); check that "
            "it is a complete FITS file (copy it again if it was truncated)",
            filename=path) from err


def _check_complete(hdul, path):
    size = os.path.getsize(path)
    for index, hdu in enumerate(hdul):
        info = hdu.fileinfo()
        if info is None:
            continue
        end = info["datLoc"] + _data_bytes(hdu.header)
        if end > size:
            raise InstrumentError(
                f"{path}[{index}]: the file is truncated ({size} bytes, the data of "
                f"extension {index} needs {end}); copy it again from the telescope",
                filename=path, extension=index)


def _data_bytes(header):
    naxis = header.get("NAXIS", 0)
    if not naxis:
        return 0
    count = 1
    for axis in range(1, naxis + 1):
        count *= header.get(f"NAXIS{axis}", 0)
    count = header.get("GCOUNT", 1) * (header.get("PCOUNT", 0) + count)
    return abs(header.get("BITPIX", 8)) // 8 * count


def _validated(spec, source):
    def fail(message, key):
        raise InstrumentError(f"instrument file {source}: {message}; fix it ({_DOCS})",
                              filename=source, keyword=key)

    if not isinstance(spec, dict):
        fail("it is not a mapping of keys to values", None)
    for key in ("name", "keywords", "detectors"):
        if key not in spec:
            fail(f"key '{key}' is missing", key)
    unknown = set(spec) - {"name", "description", "match", "site", "keywords", "required",
                           "obstypes", "detectors", "filters", "simulation"}
    if unknown:
        fail(f"unknown key(s) {sorted(unknown)}", sorted(unknown)[0])
    if not isinstance(spec["keywords"], dict):
        fail("'keywords' must map observation keys to header keywords", "keywords")
    for key, value in spec["keywords"].items():
        if key not in _OBSERVATION_KEYS:
            fail(f"'keywords.{key}' is not one of {list(_OBSERVATION_KEYS)}", f"keywords.{key}")
        if not _alternatives(value):
            fail(f"'keywords.{key}' must be a keyword or a list of keywords", f"keywords.{key}")
    if "obstype" not in spec["keywords"]:
        fail("'keywords.obstype' is missing: which keyword says bias, flat or science?",
             "keywords.obstype")
    for obstype in spec.get("obstypes") or {}:
        if obstype not in OBSTYPES:
            fail(f"'obstypes.{obstype}' is not one of {list(OBSTYPES)}", f"obstypes.{obstype}")
    for key, types in (spec.get("required") or {}).items():
        if key not in _OBSERVATION_KEYS:
            fail(f"'required.{key}' is not one of {list(_OBSERVATION_KEYS)}", f"required.{key}")
        if types != "all" and not (isinstance(types, list) and set(types) <= set(OBSTYPES)):
            fail(f"'required.{key}' must be 'all' or a list of {list(OBSTYPES)}",
                 f"required.{key}")
    for i, rule in enumerate(spec.get("match") or []):
        if not isinstance(rule, dict) or not rule:
            fail(f"'match[{i}]' must map header keywords to patterns", "match")
    detectors = spec["detectors"]
    if not isinstance(detectors, dict):
        fail("'detectors' must be a mapping", "detectors")
    if detectors.get("extensions", "image") not in ("image", "single"):
        fail("'detectors.extensions' must be 'image' or 'single'", "detectors.extensions")
    for part in ("keywords", "default"):
        for key in detectors.get(part) or {}:
            if key not in _DETECTOR_KEYS:
                fail(f"'detectors.{part}.{key}' is not one of {list(_DETECTOR_KEYS)}",
                     f"detectors.{part}.{key}")
    for part in ("default",):
        for key in ("overscan", "data"):
            value = (detectors.get(part) or {}).get(key)
            if value is not None:
                try:
                    fits_section(str(value))
                except ValueError as err:
                    fail(f"'detectors.{part}.{key}': {err}", f"detectors.{part}.{key}")
    zone = (spec.get("site") or {}).get("timezone")
    if zone:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            fail(f"'site.timezone' {zone!r} is not an IANA time zone such as "
                 f"'America/Santiago'", "site.timezone")
    return spec


def _alternatives(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value.upper()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.upper() for v in value]
    return []


def _matches(value, pattern):
    if value is None:
        return False
    return fnmatch.fnmatchcase(str(value).strip().lower(), str(pattern).strip().lower())


def _angle(value, hours):
    """Degrees from a header value: a number (degrees) or sexagesimal text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    unit = "hourangle" if hours else "deg"
    from astropy.coordinates import Angle  # imported when needed: it takes 0.4 s

    return float(Angle(text.replace(" ", ":"), unit=unit).degree)


def _fits_date(text):
    """ISO date from ``YYYY-MM-DD`` or the old FITS ``DD/MM/YY`` form."""
    parts = text.split("/")
    if len(parts) == 3:
        day, month, year = (int(p) for p in parts)
        return f"{1900 + year if year < 100 else year:04d}-{month:02d}-{day:02d}"
    return text


def _time(*args, **kwargs):
    """`astropy.time.Time`, imported when first needed (it takes a quarter second)."""
    from astropy.time import Time

    return Time(*args, **kwargs)


def _naive_utc(time):
    return time.utc.to_datetime().replace(tzinfo=None)


def _as_utc(value):
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)
