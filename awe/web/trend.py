"""Trends on the web: one attribute path against another over a persistent class, with
conditions; a scatter plot and the table (the five-line trend script as a page).

A request names a class (``cls``), two attribute paths (``x``, ``y``: scalars reached
through single references, e.g. ``flat.stdev``) and conditions (``where``, repeated):
``path op value`` with ``op`` one of ``== != < <= > >= like``. Nothing of it is
evaluated as Python or SQL: every path is checked attribute by attribute against the
class's persistent attributes, the value is converted to the attribute's type, and the
query is built with the query language (`persistence.Query`), so values travel as
bound parameters.
"""

import dataclasses
import datetime
import io
import math
import operator
import re
import textwrap
from typing import Optional, Union
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

import persistence
import targets
from persistence.attribute import REFERENCE, REFERENCE_LIST, SCALAR

from .session import Viewer, viewer

__all__ = ["MAX_POINTS", "Trend", "router", "trend_classes"]

router = APIRouter()

MAX_POINTS = 10_000
"""Points a trend shows at most (the first ones in ``object_id`` order)."""

MAX_CONDITIONS = 20
"""Conditions a trend takes at most."""

MAX_TEXT = 300
"""Longest path or condition accepted: anything longer is no attribute path."""

PATH_DEPTH = 2
"""References the offered paths follow (``flat.bias.stdev``); typed paths may go further."""

_FAMILIES = (targets.DataObject, targets.Source, targets.Object, targets.ObjectPhotometry,
             targets.Association)
_ABSTRACT = (targets.DataObject, targets.ProcessTarget, targets.CalibrationTarget)
_NOT_FOLLOWED = (persistence.DBObject, targets.ProcessParameters)
"""References to these are not followed in the offered paths: only the bookkeeping
attributes every object has are behind them."""

_OPERATORS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt,
              "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CONDITION = re.compile(r"\s*(?P<path>[A-Za-z0-9_.]+)\s*(?:(?P<op>==|!=|<=|>=|<|>)"
                        r"|\s(?P<like>like)\s)\s*(?P<value>.*?)\s*", re.DOTALL)
_EXAMPLES = ("filter == r", "seeing < 1.2", "chip.name like ccd*",
             "date_obs >= 2024-01-01T00:00", "flat.stdev > 0.01", "reviewed_date == null")


def trend_classes():
    """The classes a trend is drawn over, by name: the data products, raw frames and
    catalogues `targets` offers (not their abstract bases, nor bookkeeping)."""
    found = {}
    for cls in persistence.registered_classes():
        if (issubclass(cls, _FAMILIES) and cls not in _ABSTRACT
                and getattr(targets, cls.__name__, None) is cls):
            found[cls.__name__] = cls
    return dict(sorted(found.items()))


def attribute_paths(cls, depth=PATH_DEPTH):
    """The scalar attribute paths of ``cls`` through up to ``depth`` single references:
    ``[(path, type name, doc)]``, what the form offers for x, y and conditions."""
    found = []
    for name, prop in cls.get_persistent_properties().items():
        if prop.kind == SCALAR:
            found.append((name, prop.type_name(), prop.doc))
        elif prop.kind == REFERENCE and depth > 0 and prop.type not in _NOT_FOLLOWED:
            found += [(f"{name}.{path}", kind, doc)
                      for path, kind, doc in attribute_paths(prop.type, depth - 1)]
    return found


# -- parsing, without eval ---------------------------------------------------------------

def _class(name):
    classes = trend_classes()
    if not name:
        raise ValueError(f"choose a class (cls): one of {', '.join(classes)}")
    cls = classes.get(name)
    if cls is None:
        raise ValueError(f"cls: {name[:60]!r} is not a class trends are drawn over; "
                         f"choose one of {', '.join(classes)}")
    return cls


def _path(cls, text, role, *, condition=False):
    """The attributes ``text`` (``'flat.stdev'``) names from ``cls``, checked one by
    one: a `persistence.Attribute`. Conditions may pass through lists of references
    (any element matches) and end at a reference (compared with an object id)."""
    example = "e.g. 'seeing' or 'flat.stdev'"
    if not text or not text.strip():
        raise ValueError(f"{role}: give an attribute path of {cls.__name__}, {example}")
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"{role}: an attribute path of at most {MAX_TEXT} characters, "
                         f"{example}")
    props, current = [], cls
    steps = text.split(".")
    for i, name in enumerate(steps):
        shown = ".".join(steps[:i + 1])
        if not _NAME.fullmatch(name):
            raise ValueError(f"{role}: {text[:80]!r} is not a path of attribute names "
                             f"joined by dots ({shown[:80]!r}), {example}")
        prop = current.get_persistent_properties().get(name)
        if prop is None:
            raise ValueError(f"{role}: {current.__name__} has no attribute {name!r} (in "
                             f"{text!r}); {_close_matches(current, name)}")
        if i < len(steps) - 1:
            through = (REFERENCE, REFERENCE_LIST) if condition else (REFERENCE,)
            if prop.kind not in through:
                what = ("a list; plot an attribute reached through single references"
                        if prop.kind == REFERENCE_LIST else "not a reference")
                raise ValueError(f"{role}: {current.__name__}.{name} is a "
                                 f"{prop.type_name()}, {what}, so {text!r} cannot go on "
                                 "past it")
            current = prop.type
        props.append(prop)
    last = props[-1]
    allowed = (SCALAR, REFERENCE) if condition else (SCALAR,)
    if last.kind not in allowed:
        raise ValueError(f"{role}: {text!r} is a {last.type_name()}; "
                         + ("name one of its attributes, e.g. "
                            f"{text}.{next(iter(last.type.get_persistent_properties()))}"
                            if last.is_reference else
                            "a list of values is not compared or plotted"))
    return persistence.Attribute(cls, tuple(props))


def _close_matches(cls, name):
    import difflib

    names = sorted(cls.get_persistent_properties())
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return (f"did you mean {', '.join(close)}?" if close
            else f"its attributes are {', '.join(names)}")


def _condition(cls, text):
    """``path op value`` as a query on ``cls``."""
    how = ("write a condition as 'path op value' with op one of "
           f"{', '.join(_OPERATORS)}, like; e.g. {'; '.join(_EXAMPLES[:3])}")
    if len(text) > MAX_TEXT:
        raise ValueError(f"where: a condition of at most {MAX_TEXT} characters; {how}")
    found = _CONDITION.fullmatch(text)
    if found is None:
        hint = "; '=' compares nothing, write '=='" if re.search(r"[^=!<>]=[^=]", text) \
            else ""
        raise ValueError(f"where: {text[:80]!r} is not a condition{hint}; {how}")
    attr = _path(cls, found["path"], f"where {text[:80]!r}", condition=True)
    op = found["op"] or "like"
    raw = found["value"]
    if not raw:
        raise ValueError(f"where {text[:80]!r}: give a value after {op} (quoted, '', for "
                         f"empty text); {how}")
    quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\""
    value = raw[1:-1] if quoted else raw
    if any(ord(c) < 32 for c in value):
        raise ValueError(f"where {text[:80]!r}: the value holds control characters")
    prop, path = attr.prop, found["path"]
    if not quoted and value in ("null", "None"):
        if op == "==":
            return attr.is_null()
        if op == "!=":
            return ~attr.is_null()
        raise ValueError(f"where {text[:80]!r}: a missing value (null) is only compared "
                         "with == or !=")
    if op == "like":
        if prop.kind != SCALAR or prop.type is not str:
            raise ValueError(f"where {text[:80]!r}: like matches text, and {path} is a "
                             f"{prop.type_name()}; compare it with {', '.join(_OPERATORS)}")
        return attr.like(value)
    if prop.kind == REFERENCE and op not in ("==", "!="):
        raise ValueError(f"where {text[:80]!r}: {path} is a reference to a "
                         f"{prop.type_name()}; compare it with == or != and an object id, "
                         f"or compare one of its attributes ({path}.object_id > ...)")
    return attr.operate(_OPERATORS[op], _converted(prop, path, value, text))


def _converted(prop, path, value, text):
    """``value`` (text) as the type of ``prop``."""
    kind = int if prop.kind == REFERENCE else prop.type
    what = "an object id" if prop.kind == REFERENCE else (
        "an int" if kind is int else f"a {prop.type_name()}")
    where = f"where {text[:80]!r}: {path} is {what}"
    if kind is int:
        if re.fullmatch(r"[+-]?\d{1,19}", value) and -2 ** 63 <= int(value) < 2 ** 63:
            return int(value)
        raise ValueError(f"{where}: {value[:40]!r} is not a whole number (e.g. 3)")
    if kind is float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"{where}: {value[:40]!r} is not a finite number (e.g. 1.2, "
                             "3e-5)")
        return number
    if kind is bool:
        truth = {"true": True, "1": True, "yes": True, "false": False, "0": False,
                 "no": False}.get(value.lower())
        if truth is None:
            raise ValueError(f"{where}: {value[:40]!r} is not true or false")
        return truth
    if kind is datetime.datetime:
        try:
            when = datetime.datetime.fromisoformat(value)
            if when.tzinfo is not None:
                when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return when
        except (ValueError, OverflowError):
            raise ValueError(f"{where} (UTC): {value[:40]!r} is not an ISO 8601 date and "
                             "time, e.g. 2024-01-31T22:10:00 or 2024-01-31") from None
    return value  # str


@dataclasses.dataclass
class Trend:
    """A parsed trend request: the class, the x and y attributes and the conditions."""

    cls: type
    x: persistence.Attribute
    y: persistence.Attribute
    where: list
    """The conditions as given (text), in order."""
    query: persistence.Query

    @classmethod
    def parse(cls, name, x, y, where=()):
        """The trend of class ``name``, paths ``x`` and ``y`` and conditions ``where``
        (texts, empty ones ignored).

        Raises
        ------
        ValueError
            Raised if the class, a path, an operator or a value is bad; the message
            names it and shows how to write it.
        """
        target = _class(name)
        conditions = [w for w in where if w and w.strip()]
        if len(conditions) > MAX_CONDITIONS:
            raise ValueError(f"where: at most {MAX_CONDITIONS} conditions")
        query = target.all()
        for text in conditions:
            query = query & _condition(target, text)
        return cls(target, _path(target, x, "x"), _path(target, y, "y"), conditions,
                   query)

    @staticmethod
    def path(attr):
        """The attribute's path from the class, as written: ``'flat.stdev'``."""
        return ".".join(p.name for p in attr.path)

    def label(self, attr):
        return f"{self.path(attr)} ({attr.prop.doc})"

    def points(self, limit=None):
        """``(object_ids, xs, ys, capped)``: the values of the first ``limit`` objects
        (by default `MAX_POINTS`; ``object_id`` order); None where a value, or a
        reference on the way, is missing or not visible."""
        limit = MAX_POINTS if limit is None else limit
        objects = list(self.query[:limit + 1])
        capped = len(objects) > limit
        objects = objects[:limit]
        return ([o.object_id for o in objects], [_follow(o, self.x) for o in objects],
                [_follow(o, self.y) for o in objects], capped)

    def query_string(self):
        return urlencode([("cls", self.cls.__name__), ("x", self.path(self.x)),
                          ("y", self.path(self.y)), *[("where", w) for w in self.where]])


def _follow(obj, attr):
    value = obj
    for prop in attr.path:
        try:
            value = getattr(value, prop.name)
        except persistence.ObjectNotFoundError:  # a reference the user may not see
            return None
        if value is None:
            return None
    return value


def _json_value(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- the plot ----------------------------------------------------------------------------

def trend_png(trend, object_ids, xs, ys, capped):
    """The scatter plot as PNG bytes (matplotlib's object API: no pyplot state shared
    between requests)."""
    from matplotlib.figure import Figure

    pairs = [(_plotted(x), _plotted(y)) for x, y in zip(xs, ys)
             if _plotted(x) is not None and _plotted(y) is not None]
    figure = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    axes = figure.subplots()
    if pairs:
        axes.scatter([p[0] for p in pairs], [p[1] for p in pairs], s=12, alpha=0.7,
                     edgecolors="none")
    else:
        axes.text(0.5, 0.5, "no points", ha="center", va="center",
                  transform=axes.transAxes, color="#666")
    axes.set_xlabel("\n".join(textwrap.wrap(trend.label(trend.x), 90)))
    axes.set_ylabel("\n".join(textwrap.wrap(trend.label(trend.y), 60)))
    axes.grid(True, alpha=0.3)
    shown = f"{len(pairs)} points"
    if capped:
        shown += f" (the first {len(object_ids)} objects)"
    title = [f"{trend.cls.__name__}: {shown}", *trend.where]
    axes.set_title("\n".join(textwrap.shorten(t, 100) for t in title), fontsize=9)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _plotted(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- routes ------------------------------------------------------------------------------

Value = Optional[Union[bool, int, float, str]]


class TrendOut(BaseModel):
    """The points of a trend, in ``object_id`` order; null where a value is missing
    (datetimes as ISO 8601 text, UTC)."""

    object_id: list[int]
    x: list[Value]
    y: list[Value]
    capped: bool = Field(description=f"More objects matched than the {MAX_POINTS} given")


CLS = Query("", description="The class, e.g. CalibratedExposure (GET /trend lists them)")
X = Query("", description="Attribute path of x through single references, e.g. seeing "
                          "or flat.stdev")
Y = Query("", description="Attribute path of y")
WHERE = Query([], description="Conditions, repeated: 'path op value', op one of == != < "
                              "<= > >= like; e.g. 'filter == r', 'chip.name like ccd*', "
                              "'date_obs >= 2024-01-31T20:00', 'reviewed_date == null'")


def _page(request, who, status=200, **values):
    from .app import templates

    return templates.TemplateResponse(request, "trend.html", {"viewer": who, **values},
                                      status_code=status)


@router.get("/trend", include_in_schema=False)
def trend_page(request: Request, cls: str = CLS, x: str = X, y: str = Y,
               where: list[str] = WHERE, who: Viewer = Depends(viewer)):
    classes = trend_classes()
    chosen = classes.get(cls) or classes["CalibratedExposure"]
    form = dict(cls=chosen.__name__, x=x, y=y, where=[w for w in where if w.strip()])
    page = dict(classes=classes, form=form, paths=attribute_paths(chosen),
                examples=_EXAMPLES, limit=MAX_POINTS, trend=None)
    if not (x or y or where) and cls in ("", chosen.__name__):
        return _page(request, who, **page)
    try:
        trend = Trend.parse(cls, x, y, where)
        object_ids, xs, ys, capped = trend.points()
    except ValueError as err:
        return _page(request, who, 400, error=" ".join(str(err).split()), **page)
    page.update(trend=trend, capped=capped, query_string=trend.query_string(),
                rows=[(i, _shown(a), _shown(b)) for i, a, b in zip(object_ids, xs, ys)])
    return _page(request, who, **page)


def _shown(value):
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@router.get("/trend.png", tags=["trend"], response_class=Response,
            responses={200: {"content": {"image/png": {}},
                             "description": "The scatter plot"}})
def trend_plot(cls: str = CLS, x: str = X, y: str = Y, where: list[str] = WHERE):
    """The trend's scatter plot (PNG): y against x, axes labelled with the paths and
    what the attributes mean."""
    trend = Trend.parse(cls, x, y, where)
    return Response(trend_png(trend, *trend.points()), media_type="image/png",
                    headers={"Cache-Control": "no-store"})


@router.get("/api/trend", response_model=TrendOut, tags=["trend"])
def trend_points(cls: str = CLS, x: str = X, y: str = Y, where: list[str] = WHERE):
    """The points of a trend: x and y of every object of the class that matches the
    conditions and that the user may see (the first 10,000, by object id)."""
    trend = Trend.parse(cls, x, y, where)
    object_ids, xs, ys, capped = trend.points()
    return TrendOut(object_id=object_ids, x=[_json_value(v) for v in xs],
                    y=[_json_value(v) for v in ys], capped=capped)
