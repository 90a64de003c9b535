"""Virtual Observatory access: IVOA Simple Cone Search 1.03 over the running catalogue
of objects (``/scs/objects``) and over the sources of every source list
(``/scs/sources``).

A query gives ``RA``, ``DEC`` (ICRS) and ``SR`` in decimal degrees, and optionally
``VERB`` (1: id and position; 2, the default: the useful columns; 3: every column).
The answer is a VOTable whose table has exactly one ``ID_MAIN`` field (the object id),
``POS_EQ_RA_MAIN`` and ``POS_EQ_DEC_MAIN`` (degrees) and a ``distance`` from the
position (degrees, ``POS_ANG_DIST_GENERAL``); its rows are sorted by distance (ties by
object id). The request runs as the session's user, so a client without a session,
as VO clients are, sees world-visible rows (privileges 4) only.

As SCS 1.03 asks, errors are HTTP 200 with a VOTable holding ``<INFO name="Error"
value="..."/>``: ``RA``, ``DEC`` or ``SR`` missing or not a number, ``RA`` outside
[0, 360], ``DEC`` outside [-90, 90], ``SR`` negative or above `MAX_RADIUS` (10 deg),
``VERB`` not 1, 2 or 3. ``SR=0`` is the metadata query clients send (pyvo's
``SCSService.columns``): the table's fields without rows. At most `MAX_ROWS`
(50,000) rows are returned: the nearest ones, with an ``INFO`` saying so.
"""

import io
import math
import re

import numpy as np
from astropy.io.votable.tree import Field, Info, Resource, TableElement, VOTableFile
from astropy.table import MaskedColumn, Table
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

import targets
from targets.imaging.skymatch import separation_arcsec

__all__ = ["MAX_RADIUS", "MAX_ROWS", "ConeSearchError", "cone_search", "router"]

router = APIRouter()

MAX_RADIUS = 10.0
"""The largest search radius accepted [deg]."""

MAX_ROWS = 50_000
"""The most rows a cone search returns: the nearest ones."""

ID_MAIN, RA_MAIN, DEC_MAIN = "ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"
DISTANCE_UCD = "POS_ANG_DIST_GENERAL"


class ConeSearchError(ValueError):
    """Raised if a cone search's parameters are bad; the message says which and how
    to give them. Sent to the client as an SCS error VOTable."""


class VOTableResponse(Response):
    media_type = "text/xml"


class _Catalogue:
    """What one endpoint searches: a sky-indexed class and its columns by VERB."""

    def __init__(self, cls, name, verb2, units):
        self.cls, self.name, self.verb2, self.units = cls, name, verb2, units

    def columns(self, verb):
        """The attributes read for ``verb`` (besides object_id)."""
        if verb == 1:
            return ["ra", "dec"]
        if verb == 2:
            return ["ra", "dec", *self.verb2]
        return [name for name, prop in self.cls.get_persistent_properties().items()
                if prop.kind in ("scalar", "reference") and name != "object_id"]


CATALOGUES = {
    "objects": _Catalogue(
        targets.Object, "objects",
        ["ra_err", "dec_err", "n_detections", "first_mjd", "last_mjd", "v", "eta",
         "variability_filter", "is_new"],
        {"ra": "deg", "dec": "deg", "ra_err": "arcsec", "dec_err": "arcsec",
         "ref_ra": "deg", "ref_dec": "deg", "first_mjd": "d", "last_mjd": "d"}),
    "sources": _Catalogue(
        targets.Source, "sources",
        ["ra_err", "dec_err", "mag", "mag_err", "mag_aper", "mag_aper_err", "flux",
         "flux_err", "snr", "flags", "class_star", "mjd", "filter", "sourcelist"],
        {"ra": "deg", "dec": "deg", "ra_err": "arcsec", "dec_err": "arcsec",
         "mag": "mag", "mag_err": "mag", "mag_aper": "mag", "mag_aper_err": "mag",
         "flux": "uJy", "flux_err": "uJy", "mjd": "d", "x": "pix", "y": "pix",
         "xy_err": "pix", "a": "pix", "b": "pix", "fwhm": "pix", "flux_radius": "pix",
         "theta": "rad"}),
}


# -- the search --------------------------------------------------------------------------

def cone_search(catalogue, ra, dec, radius, verb=2, max_rows=None):
    """The rows of ``catalogue`` (``'objects'`` or ``'sources'``) within ``radius``
    degrees of ``(ra, dec)`` that the context's user may see, nearest first: an
    astropy `~astropy.table.Table` with ``object_id``, ``ra``, ``dec``, ``distance``
    [deg] and the columns of ``verb``. When the cone holds more than ``max_rows``
    (by default `MAX_ROWS`), the table has the nearest and ``meta['capped']`` is the
    number in the cone."""
    found = CATALOGUES[catalogue]
    max_rows = MAX_ROWS if max_rows is None else max_rows
    names = found.columns(verb)
    query = found.cls.cone(ra, dec, radius)
    capped = None
    if radius == 0:
        rows = found.cls.cone(ra, dec, radius).columns(*names)
        rows = {name: values[:0] for name, values in rows.items()}
    else:
        total = query.count()
        if total > max_rows:
            radius = _radius_holding(found.cls, ra, dec, radius, max_rows)
            capped = (total, radius)
        rows = found.cls.cone(ra, dec, radius).columns(*names)
    distance = separation_arcsec(rows["ra"].astype(float), rows["dec"].astype(float),
                                 ra, dec) / 3600.0
    order = np.lexsort((rows["object_id"], distance))[:max_rows]
    table = Table()
    table["object_id"] = rows["object_id"][order]
    table["ra"], table["dec"] = rows["ra"][order], rows["dec"][order]
    table["distance"] = distance[order]
    properties = found.cls.get_persistent_properties()
    for name in names:
        if name not in table.colnames:
            table[name] = _column(rows[name][order], properties[name])
    if catalogue == "objects" and verb >= 2:
        _add_photometry(table, verb)
    for name in set(table.colnames) & set(properties):
        table[name].unit = found.units.get(name)
        table[name].description = properties[name].doc
    table["distance"].unit = "deg"
    table["distance"].description = "Distance from the position searched [deg]"
    if capped is not None:
        table.meta["capped"] = capped[0]
    return table


def _radius_holding(cls, ra, dec, radius, max_rows):
    """The largest radius (to a part in 10¹²) within ``radius`` whose cone holds at
    most ``max_rows`` rows: counts by bisection, each an index range scan, rather
    than reading every row of a crowded cone to keep the nearest."""
    low, high = 0.0, radius
    while high - low > 1e-12 * radius:
        middle = (low + high) / 2
        n = cls.cone(ra, dec, middle).count()
        if n > max_rows:
            high = middle
        else:
            low = middle
            if n == max_rows:
                break
    return low


def _column(values, prop):
    """A table column of attribute ``prop`` from its `Query.columns` values: ints,
    booleans and references with missing values masked, text and times as text."""
    if values.dtype != object:
        return values
    missing = [v is None for v in values]
    kind = int if prop.kind == "reference" else prop.type
    if kind in (int, bool):
        return MaskedColumn([kind(0) if v is None else kind(v) for v in values],
                            dtype=np.int64 if kind is int else bool, mask=missing)
    if kind is float:
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    text = [v.isoformat() if hasattr(v, "isoformat") else v for v in values]
    return np.array(["" if v is None else str(v) for v in text], dtype=str)


def _add_photometry(table, verb):
    """The objects' weighted mean magnitude per filter (``mag_<filter>``,
    ``mag_err_<filter>``; VERB 3 also the mean flux) from `ObjectPhotometry`: one
    query per 5,000 objects."""
    Photometry = targets.ObjectPhotometry
    names = ["object", "filter", "mag", "mag_err"]
    if verb >= 3:
        names += ["flux", "flux_err"]
    ids = table["object_id"].tolist()
    found = {}
    for start in range(0, len(ids), 5000):
        rows = Photometry.object.is_in(ids[start:start + 5000]).columns(*names)
        for values in zip(*(rows[n].tolist() for n in names)):
            found.setdefault(values[1], {})[values[0]] = values[2:]
    row_of = {object_id: k for k, object_id in enumerate(ids)}
    properties = Photometry.get_persistent_properties()
    for filter_name in sorted(found):
        suffix = re.sub(r"\W", "_", str(filter_name)) or "none"
        for j, quantity in enumerate(names[2:]):
            name = f"{quantity.replace('_err', '')}_err_{suffix}" if quantity.endswith(
                "_err") else f"{quantity}_{suffix}"
            values = np.full(len(ids), np.nan)
            for object_id, measured in found[filter_name].items():
                value = measured[j]
                values[row_of[object_id]] = np.nan if value is None else value
            table[name] = values
            table[name].unit = "uJy" if quantity.startswith("flux") else "mag"
            table[name].description = f"{properties[quantity].doc}, filter {filter_name}"


# -- the VOTable --------------------------------------------------------------------------

def votable(table, catalogue):
    """``table`` as SCS 1.03 VOTable bytes: one RESOURCE and TABLE, the position and id
    fields with their UCDs, and an INFO when rows were left out. The fields are made
    here, not guessed from numpy types: booleans as ``boolean`` (not ``bit``), text of
    any length (``arraysize="*"``), missing values as nulls."""
    document = VOTableFile()
    resource = Resource()
    document.resources.append(resource)
    element = TableElement(document, name=f"awe_{catalogue}")
    element.description = (f"AWE {catalogue} within the cone, nearest first: those the "
                           "requesting user may see")
    resource.tables.append(element)
    ucds = {"object_id": ID_MAIN, "ra": RA_MAIN, "dec": DEC_MAIN, "distance": DISTANCE_UCD}
    for name in table.colnames:
        column = table[name]
        datatype, arraysize = _DATATYPES[column.dtype.kind]
        field = Field(document, name=name, ID=name, datatype=datatype, arraysize=arraysize,
                      ucd=ucds.get(name), unit=str(column.unit) if column.unit else None)
        field.description = column.description or None
        element.fields.append(field)
    element.create_arrays(len(table))
    for name in table.colnames:
        column = table[name]
        mask = np.ma.getmaskarray(column)
        element.array[name] = np.ma.getdata(column).tolist() if column.dtype.kind == "U" \
            else np.ma.getdata(column)
        element.array.mask[name] = mask
    capped = table.meta.get("capped")
    if capped:
        document.infos.append(Info(name="QUERY_STATUS", value="OVERFLOW"))
        resource.infos.append(Info(name="Warning", value=(
            f"the cone holds {capped} rows, more than this service returns: these are "
            f"the {len(table)} nearest; search a smaller cone for the rest")))
    else:
        document.infos.append(Info(name="QUERY_STATUS", value="OK"))
    return _xml(document)


_DATATYPES = {"f": ("double", None), "i": ("long", None), "b": ("boolean", None),
              "U": ("unicodeChar", "*")}
"""VOTable datatype and arraysize by numpy kind, for the columns a search has."""


def error_votable(message):
    """The SCS 1.03 error answer: a VOTable whose only INFO is named Error."""
    document = VOTableFile()
    document.infos.append(Info(name="Error", value=" ".join(str(message).split())))
    return _xml(document)


def _xml(document):
    out = io.BytesIO()
    document.to_xml(out)
    return out.getvalue()


# -- parameters ---------------------------------------------------------------------------

def _parameter(request, name):
    """The value of parameter ``name`` (case-insensitive, as clients vary), or None."""
    values = [v for k, v in request.query_params.multi_items() if k.upper() == name]
    if len(values) > 1:
        raise ConeSearchError(f"{name} is given {len(values)} times; give it once")
    return values[0] if values else None


def _number(request, name, low, high, what):
    text = _parameter(request, name)
    if text is None or not text.strip():
        raise ConeSearchError(f"{name} is missing: give RA, DEC and SR in decimal "
                              "degrees, e.g. ?RA=150.1&DEC=2.2&SR=0.01")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConeSearchError(f"{name}={text[:40]!r} is not a number: give {what} in "
                              "decimal degrees, e.g. 150.1")
    if not low <= value <= high:
        raise ConeSearchError(f"{name}={value:g} is out of range: {what} is in "
                              f"[{low:g}, {high:g}] degrees")
    return value


def _verb(request):
    text = _parameter(request, "VERB")
    if text is None or not text.strip():
        return 2
    if text.strip() not in ("1", "2", "3"):
        raise ConeSearchError(f"VERB={text[:20]!r}: give 1 (id and position), 2 (the "
                              "useful columns, the default) or 3 (every column)")
    return int(text)


def _search(request, catalogue):
    try:
        ra = _number(request, "RA", 0.0, 360.0, "the right ascension (ICRS)")
        dec = _number(request, "DEC", -90.0, 90.0, "the declination (ICRS)")
        radius = _number(request, "SR", 0.0, MAX_RADIUS,
                         f"the radius (at most {MAX_RADIUS:g} here)")
        verb = _verb(request)
        body = votable(cone_search(catalogue, ra % 360.0, dec, radius, verb), catalogue)
    except ConeSearchError as err:
        body = error_votable(err)
    return VOTableResponse(body)


# -- routes -------------------------------------------------------------------------------

RA = Query(None, alias="RA", description="Right ascension of the centre, ICRS [deg], "
                                         "0 to 360")
DEC = Query(None, alias="DEC", description="Declination of the centre, ICRS [deg], "
                                           "-90 to 90")
SR = Query(None, alias="SR", description=f"Radius of the cone [deg], 0 to {MAX_RADIUS:g} "
                                         "(0: the columns only, no rows)")
VERB = Query(None, alias="VERB", description="1: id and position; 2 (default): the "
                                             "useful columns; 3: every column")
_VOTABLE = {200: {"content": {"text/xml": {}},
                  "description": "A VOTable: the rows, or an INFO named Error"}}


@router.get("/scs/objects", tags=["vo"], response_class=VOTableResponse,
            responses=_VOTABLE)
def cone_search_objects(request: Request, ra: str = RA, dec: str = DEC, sr: str = SR,
                        verb: str = VERB):
    """Simple Cone Search (IVOA SCS 1.03) over the objects: the associated catalogue
    with positions, detections, variability (V, η), the new-object flag and, from
    VERB 2, the mean magnitude per filter. Rows nearest first; at most 50,000; SR at
    most 10 degrees; errors as a VOTable with INFO name="Error" (HTTP 200)."""
    return _search(request, "objects")


@router.get("/scs/sources", tags=["vo"], response_class=VOTableResponse,
            responses=_VOTABLE)
def cone_search_sources(request: Request, ra: str = RA, dec: str = DEC, sr: str = SR,
                        verb: str = VERB):
    """Simple Cone Search (IVOA SCS 1.03) over the sources of every source list:
    positions, magnitudes, fluxes, S/N, flags, time, filter and source list. Rows
    nearest first; at most 50,000; SR at most 10 degrees; errors as a VOTable with
    INFO name="Error" (HTTP 200)."""
    return _search(request, "sources")
