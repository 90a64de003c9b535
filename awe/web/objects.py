"""Object pages and the calibration timeline, with their JSON API.

Every object has a page (``/objects/{id}``): its persistent attributes with their
docs, process parameters, quality flags by name, validity and validity window, the
audit trail, its lineage (upstream) and dependents (downstream) as linked trees, a
preview of its image (``preview.png``, zscale, mask on request) or a paged, sortable
table of its sources (downloadable as CSV, FITS and VOTable), and for an `Object` its
light curve. A calibrator sees forms to set the validity and the validity window;
each shows what the change would outdate before anything changes (a second POST with
``confirm=1`` changes it, through `targets.curation`).
"""

import datetime
import io
import math
from typing import Annotated, Any, Literal, Optional

import networkx as nx
import numpy as np
from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

import persistence
import targets
from persistence.attribute import REFERENCE
from targets import curation
from targets.lineage import LineageEdge, impact
from targets.process import describe
from targets.source_list import SOURCE_COLUMNS

from .. import preview
from .processing import render
from .session import Viewer, require_csrf, viewer

__all__ = ["PAGE_ROWS", "router", "window_impact"]

router = APIRouter()

OBJECT_ID = Path(ge=1, lt=2 ** 63, description="The object's id")
PAGE_ROWS = 100
"""Sources per page of a source list's table."""
HIDDEN_CLASSES = frozenset({"Credential"})
"""Classes whose objects have no page, even for their owner (password hashes)."""
VALIDITY = {0: "invalid, never selected", 1: "valid", 2: "proposed for promotion"}
MAX_LINKS = 50
"""Most objects of a list of references a page links to."""
MAX_COMMENT = 2000
"""Longest comment of a judgement [characters]."""
DOWNLOADS = {"csv": ("ascii.csv", "text/csv"), "fits": ("fits", "application/fits"),
             "xml": ("votable", "application/x-votable+xml")}
"""Source-list downloads: extension -> (astropy format, media type)."""


# -- input checks -------------------------------------------------------------------

def clean_text(value, what="comment", max_length=MAX_COMMENT):
    """``value`` if it is text a database stores as given: no control characters but
    tabs and line breaks (PostgreSQL refuses NUL), no lone surrogates, not too long."""
    if len(value) > max_length:
        raise ValueError(f"the {what} has {len(value)} characters; at most {max_length}")
    if any(ord(c) < 32 and c not in "\t\r\n" or c == "\x7f" for c in value):
        raise ValueError(f"the {what} holds control characters; send plain text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {what} is not valid Unicode text") from None
    return value


def utc(value, what):
    """A datetime as naive UTC (how AWE stores times): aware ones converted, naive
    ones taken to be UTC."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(f"the {what} {value.isoformat()} is out of range in UTC") from None


def parse_time(text, what):
    """A form's date-time (``YYYY-MM-DDTHH:MM[:SS]``, UTC unless an offset is given)."""
    if len(text) > 40:
        raise ValueError(f"the {what} is {len(text)} characters long; give a date and "
                         "time such as 2024-03-11T12:00:00 (UTC)")
    try:
        return utc(datetime.datetime.fromisoformat(text.strip()), what)
    except ValueError:
        raise ValueError(f"the {what} {text!r:.40} is not a date and time such as "
                         "2024-03-11T12:00:00 (UTC)") from None


# -- loading and describing objects -------------------------------------------------

def load(object_id):
    """The object with ``object_id``, as its own class, if the user may see it.

    Raises
    ------
    persistence.ObjectNotFoundError
        Raised (a 404) if there is none the user may see.
    """
    obj = persistence.DBObject.load(object_id)
    if type(obj).__name__ in HIDDEN_CLASSES:
        raise persistence.ObjectNotFoundError(
            f"no object with object_id {object_id} that "
            f"{persistence.current_database().context.user or 'someone not logged in'} "
            "may see")
    return obj


def _product(obj):
    if not isinstance(obj, targets.ProcessTarget):
        raise ValueError(f"{describe(obj)} is not a product: only products (MasterBias, "
                         "CalibratedExposure, ...) have a validity to set")
    return obj


def _calibration(obj):
    if not isinstance(obj, targets.CalibrationTarget):
        raise ValueError(f"{describe(obj)} is not a calibration: it has no validity "
                         "window (only MasterBias, MasterFlat, ... have one)")
    return obj


def ref(obj):
    """How pages and the API name an object: id, class, validity, and its page."""
    if isinstance(obj, int):  # an id whose object the user may not see
        return {"object_id": obj, "class": "", "label": f"object {obj} (not visible "
                "to you)", "is_valid": None, "url": f"/objects/{obj}", "visible": False}
    return {"object_id": obj.object_id, "class": type(obj).__name__, "label": describe(obj),
            "is_valid": getattr(obj, "is_valid", None), "url": f"/objects/{obj.object_id}",
            "visible": True}


def json_value(value):
    """``value`` as JSON has it: objects by id, times in ISO 8601 (UTC), NaN as null."""
    if isinstance(value, persistence.DBObject):
        return value.object_id
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _value_of(obj, name, prop):
    """The attribute's value; a reference to an object the user may not see is its
    id (a list of them, empty)."""
    try:
        return getattr(obj, name)
    except persistence.ObjectNotFoundError:
        return obj.reference_id(name) if prop.kind == REFERENCE else []


def attributes(obj):
    """``{name: JSON value}`` of every persistent attribute."""
    found = {}
    for name, prop in type(obj).get_persistent_properties().items():
        if prop.kind == REFERENCE:  # by id, without loading it
            found[name] = obj.reference_id(name)
        else:
            found[name] = json_value(_value_of(obj, name, prop))
    return found


def _shown(value):
    """A value as the page shows it: ``(text, links, more)``."""
    if value is None:
        return "—", [], 0
    if isinstance(value, persistence.DBObject):
        return "", [ref(value)], 0
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], persistence.DBObject):
            return "", [ref(v) for v in value[:MAX_LINKS]], max(len(value) - MAX_LINKS, 0)
        text = ", ".join(scalar(v) for v in value)
        return (f"[{text[:300]}…]" if len(text) > 300 else f"[{text}]"), [], 0
    return scalar(value), [], 0


def scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="seconds") + " UTC"
    return str(value)


def attribute_rows(obj):
    """The page's attribute table: name, value (text or links), type, doc, and how it
    may change."""
    rows = []
    for name, prop in type(obj).get_persistent_properties().items():
        value = _value_of(obj, name, prop)
        if prop.kind == REFERENCE and isinstance(value, int):
            text, links, more = "", [ref(value)], 0
        else:
            text, links, more = _shown(value)
        rows.append({"name": name, "text": text, "links": links, "more": more,
                     "type": prop.type_name(), "doc": prop.doc,
                     "changes": (f"set by {prop.logged_by}()" if prop.logged_by
                                 else "mutable" if prop.mutable else "")})
    return rows


def parameter_rows(obj):
    """The process parameters the product was made with, with their docs and the
    values in force now in the user's project."""
    pars = getattr(obj, "process_parameters", None)
    if pars is None:
        return []
    properties = type(pars).get_persistent_properties()
    in_force = {}
    if isinstance(obj, targets.ProcessTarget):
        in_force = type(obj).parameters_in_force().as_dict()
    return [{"name": name, "value": json_value(value), "text": scalar(value),
             "doc": properties[name].doc, "in_force": json_value(in_force.get(name, value)),
             "in_force_text": scalar(in_force.get(name, value)),
             "differs": name in in_force and in_force[name] != value}
            for name, value in pars.as_dict().items()]


def quality(obj):
    """The quality flags set (bits and names) and those the class declares."""
    bits = getattr(obj, "quality_flags", None)
    declared = getattr(type(obj), "QUALITY_FLAGS", None) or {}
    names = obj.quality_flag_names() if hasattr(obj, "quality_flag_names") else []
    return {"bits": bits, "names": names,
            "declared": [{"bit": f.bit, "name": f.name, "doc": f.doc,
                          "set": bool((bits or 0) & f.bit)} for f in declared.values()]}


def audit(obj):
    """The audit trail, oldest first."""
    return [{"when": r.creation_date.isoformat(sep=" ", timespec="seconds"),
             "user": r.owner, "attribute": r.attribute, "old_value": r.old_value,
             "new_value": r.new_value, "comment": r.comment}
            for r in curation.audit_trail(obj)]


def window(obj):
    if not isinstance(obj, targets.CalibrationTarget):
        return None
    return {"start": json_value(obj.timestamp_start), "end": json_value(obj.timestamp_end)}


# -- lineage and dependents ---------------------------------------------------------

def _walk(obj, source, target):
    """The graph of the lineage edges reachable from ``obj`` (one recursive query),
    from each ``source`` to its ``target``, with the edge's role; an object the user
    may not see is a node by its id."""
    graph = nx.DiGraph()
    graph.add_node(obj)
    edges = persistence.reachable(LineageEdge, [obj], source=source, target=target)
    for edge in edges:
        ends = []
        for name in (source, target):
            try:
                ends.append(getattr(edge, name))
            except persistence.ObjectNotFoundError:
                ends.append(edge.reference_id(name))
        graph.add_edge(*ends, role=edge.role)
    return graph


def upstream(obj):
    """What ``obj`` was made from, recursively: a `networkx.DiGraph` from each product
    to its inputs. An `Object`'s inputs are the source lists of its sources."""
    graph = _walk(obj, "product", "input")
    if isinstance(obj, targets.Object):
        ids = sorted(set(obj.lightcurve()["sourcelist"].tolist()))
        for source_list in targets.SourceList.object_id.is_in(ids):
            graph.add_edge(obj, source_list, role="sources")
    return graph


def downstream(obj):
    """What was made from ``obj``, recursively: a `networkx.DiGraph` from each input
    to the products that used it."""
    return _walk(obj, "input", "product")


def _id(node):
    return node if isinstance(node, int) else node.object_id


def tree(graph, root):
    """``graph`` from ``root`` as nested dicts for the page; a node met again is
    drawn once, then referred to."""
    seen = set()

    def node(item, role):
        drawn = {"ref": ref(item), "role": role, "repeat": item in seen, "children": []}
        if item in seen:
            return drawn
        seen.add(item)
        for _, child, data in sorted(graph.out_edges(item, data=True),
                                     key=lambda e: (e[2]["role"], _id(e[1]))):
            drawn["children"].append(node(child, data["role"]))
        return drawn

    return node(root, "")


def graph_out(graph, root, *, downward):
    """``graph`` as the API gives it: nodes, and edges from product to input."""
    edges = [{"product": _id(b if downward else a), "input": _id(a if downward else b),
              "role": data["role"]} for a, b, data in graph.edges(data=True)]
    return {"root": root.object_id,
            "nodes": [ref(n) for n in sorted(graph, key=_id)],
            "edges": sorted(edges, key=lambda e: (e["product"], e["role"], e["input"]))}


def window_impact(obj, start, end):
    """The valid products a validity window ``[start, end)`` of calibration ``obj``
    would outdate: those made from it (directly or through other products) whose
    observation (``date_obs``) falls outside the window, and everything made from
    them. Observations the new window newly covers may select ``obj`` instead of the
    calibration they used, if it is newer; ``plan()`` tells."""
    graph = downstream(obj)
    outside = [p for p in graph if p is not obj and not isinstance(p, int)
               and getattr(p, "date_obs", None) is not None
               and not start <= p.date_obs < end]
    found = set(outside)
    for product in outside:
        found |= nx.descendants(graph, product)
    return sorted((p for p in found if not isinstance(p, int)
                   and getattr(p, "is_valid", 1) != 0), key=lambda p: p.object_id)


# -- the API's shapes ---------------------------------------------------------------

class ObjectRef(BaseModel):
    object_id: int
    class_: str = Field(alias="class", description="Empty if the user may not see it")
    label: str
    is_valid: Optional[int]
    url: str
    visible: bool


class FlagOut(BaseModel):
    bit: int
    name: str
    doc: str
    set: bool


class AuditOut(BaseModel):
    when: str = Field(description="UTC")
    user: str
    attribute: str
    old_value: str
    new_value: str
    comment: str


class WindowOut(BaseModel):
    start: Optional[str] = Field(description="ISO 8601, UTC, inclusive")
    end: Optional[str] = Field(description="ISO 8601, UTC, exclusive")


class ParameterOut(BaseModel):
    name: str
    value: Any
    doc: str
    in_force: Any = Field(description="The value in force now in the user's project")


class ObjectOut(BaseModel):
    object_id: int
    class_: str = Field(alias="class")
    attributes: dict[str, Any] = Field(description="References as object ids, times "
                                                   "in ISO 8601 (UTC), NaN as null")
    attribute_docs: dict[str, str]
    process_parameters: list[ParameterOut]
    quality_flags: Optional[int]
    quality_flag_names: list[str]
    declared_quality_flags: list[FlagOut]
    is_valid: Optional[int] = Field(description="0 invalid, 1 valid, 2 proposed for "
                                                "promotion; null for non-products")
    reviewed_date: Optional[str]
    validity_window: Optional[WindowOut]
    audit_trail: list[AuditOut]
    may_judge: bool = Field(description="Whether the user may set its validity")
    preview: Optional[str] = Field(description="URL of a PNG of its image, if it has one")


class EdgeOut(BaseModel):
    product: int
    input: int
    role: str


class GraphOut(BaseModel):
    root: int
    nodes: list[ObjectRef]
    edges: list[EdgeOut] = Field(description="From a product to an input it used")


Comment = Annotated[str, Field(max_length=MAX_COMMENT, description="Why, for the audit "
                                                                  "trail"),
                    AfterValidator(lambda text: clean_text(text))]


class ValidityIn(BaseModel):
    """A person's judgement of a product (`targets.curation.set_valid`)."""

    model_config = ConfigDict(extra="forbid")
    is_valid: int = Field(ge=0, le=2, strict=True,
                          description="0 invalid, 1 valid, 2 proposed for promotion")
    comment: Comment = ""


class WindowIn(BaseModel):
    """A calibration's new validity window (`targets.curation.set_validity_window`)."""

    model_config = ConfigDict(extra="forbid")
    start: datetime.datetime = Field(description="Inclusive; UTC unless an offset is given")
    end: datetime.datetime = Field(description="Exclusive; UTC unless an offset is given")
    comment: Comment = ""


def object_out(obj, who):
    properties = type(obj).get_persistent_properties()
    flags = quality(obj)
    reviewed = getattr(obj, "reviewed_date", None)
    return {
        "object_id": obj.object_id, "class": type(obj).__name__,
        "attributes": attributes(obj),
        "attribute_docs": {name: prop.doc for name, prop in properties.items()},
        "process_parameters": parameter_rows(obj),
        "quality_flags": flags["bits"], "quality_flag_names": flags["names"],
        "declared_quality_flags": flags["declared"],
        "is_valid": getattr(obj, "is_valid", None) if isinstance(
            obj, targets.ProcessTarget) else None,
        "reviewed_date": json_value(reviewed), "validity_window": window(obj),
        "audit_trail": audit(obj),
        "may_judge": isinstance(obj, targets.ProcessTarget) and who.may_judge(obj),
        "preview": f"/objects/{obj.object_id}/preview.png" if preview.has_image(obj)
        else None}


# -- the object page ----------------------------------------------------------------

def source_page(obj, page, sort, desc):
    """One page of a source list's sources, sorted: ``(rows, pages, total)``.

    Raises
    ------
    fastapi.HTTPException
        Raised (404) for a page beyond the last.
    """
    total = obj.sources().count()
    pages = max(1, math.ceil(total / PAGE_ROWS))
    if page > pages:
        raise HTTPException(404, f"{describe(obj)} has {total} sources, {pages} pages of "
                                 f"{PAGE_ROWS}: there is no page {page}")
    query = (targets.Source.sourcelist == obj).order_by(sort, descending=desc)
    columns = query[(page - 1) * PAGE_ROWS:page * PAGE_ROWS].columns(*SOURCE_COLUMNS)
    rows = [[_cell(columns[name][k], name) for name in SOURCE_COLUMNS]
            for k in range(len(columns["object_id"]))]
    return rows, pages, total


def _cell(value, column):
    if value is None or isinstance(value, float) and not math.isfinite(value):
        return ""
    if column in ("ra", "dec"):
        return f"{value:.6f}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.5g}"
    return str(value)


def _check_sort(sort):
    if sort not in SOURCE_COLUMNS:
        raise ValueError(f"cannot sort sources by {sort!r:.40}: choose one of "
                         f"{', '.join(SOURCE_COLUMNS)}")
    return sort


def lightcurve_points(obj):
    """The light curve as the page lists it."""
    measured = ("mag", "mag_err", "flux", "flux_err")
    return [{"mjd": f"{row['mjd']:.5f}", "filter": row["filter"], "flags": int(row["flags"]),
             "sourcelist": int(row["sourcelist"]),
             **{name: _cell(float(row[name]), name) for name in measured}}
            for row in obj.lightcurve()]


def _window_fields(obj):
    """A calibration's window as the page shows it, and as its form's datetime-local
    inputs (UTC) take it."""
    times = {"start": obj.timestamp_start, "end": obj.timestamp_end}
    return {"window_text": {k: scalar(t) if t else "—" for k, t in times.items()},
            "window_inputs": {k: t.strftime("%Y-%m-%dT%H:%M:%S") if t else ""
                              for k, t in times.items()}}


@router.get("/objects/{object_id}", include_in_schema=False)
def object_page(request: Request, object_id: int = OBJECT_ID,
                page: int = Query(1, ge=1, le=10 ** 6),
                sort: str = Query("number", max_length=40), desc: bool = False,
                mask: bool = False, changed: str = Query("", max_length=20),
                who: Viewer = Depends(viewer)):
    obj = load(object_id)
    _check_sort(sort)
    values = dict(
        obj=obj, cls=type(obj).__name__, doc=(type(obj).__doc__ or "").split("\n\n")[0],
        rows=attribute_rows(obj), parameters=parameter_rows(obj), flags=quality(obj),
        trail=audit(obj), window=window(obj), validity=VALIDITY,
        is_product=isinstance(obj, targets.ProcessTarget),
        is_calibration=isinstance(obj, targets.CalibrationTarget),
        may_judge=isinstance(obj, targets.ProcessTarget) and who.may_judge(obj),
        lineage=tree(upstream(obj), obj), dependents=tree(downstream(obj), obj),
        has_image=preview.has_image(obj), has_mask=preview.has_mask(obj),
        mask=mask and preview.has_mask(obj), mask_colours=preview.MASK_COLOURS,
        sources=None, lightcurve=None, columns=SOURCE_COLUMNS, sort=sort, desc=desc,
        page=page, message=_CHANGED.get(changed))
    if isinstance(obj, targets.SourceList):
        values["sources"], values["pages"], values["total"] = source_page(
            obj, page, sort, desc)
    if isinstance(obj, targets.Object):
        values["lightcurve"] = lightcurve_points(obj)
    if values["is_calibration"]:
        values.update(_window_fields(obj))
    return render(request, "object.html", who, **values)


_CHANGED = {"validity": "Validity changed: the audit trail below records it.",
            "window": "Validity window changed: the audit trail below records it."}


@router.get("/objects/{object_id}/preview.png", tags=["objects"], response_class=FileResponse,
            responses={200: {"content": {"image/png": {}},
                             "description": "The PNG (one pixel per image pixel, binned "
                                            "beyond 1024)"}})
def preview_image(request: Request, object_id: int = OBJECT_ID,
                  mask: bool = Query(False, description="Overlay the mask's bits")):
    """A zscale preview of the object's image (products and raw frames), with the
    bits of its mask coloured on request. Cached: a product's file never changes."""
    obj = load(object_id)
    if not preview.has_image(obj):
        raise HTTPException(404, f"{describe(obj)} has no image to preview")
    path = preview.cached_preview(obj, request.app.state.settings["cache_dir"], mask=mask)
    return FileResponse(path, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=86400"})


@router.get("/objects/{object_id}/sources.{extension}", tags=["objects"],
            response_class=Response,
            responses={200: {"content": {t: {} for _, t in DOWNLOADS.values()},
                             "description": "The sources as a table"}})
def sources_download(extension: Literal["csv", "fits", "xml"],
                     object_id: int = OBJECT_ID):
    """A source list's sources as CSV, FITS or VOTable (``.xml``), as
    `targets.SourceList.table` reads them from the database."""
    obj = load(object_id)
    if not isinstance(obj, targets.SourceList):
        raise HTTPException(404, f"{describe(obj)} is not a source list: it has no "
                                 "sources to download")
    astropy_format, media_type = DOWNLOADS[extension]
    table = obj.table()
    buffer = io.BytesIO()
    if extension == "csv":
        text = io.StringIO()
        table.write(text, format=astropy_format)
        buffer.write(text.getvalue().encode())
    else:
        table.write(buffer, format=astropy_format)
    name = f"sources-{obj.object_id}.{extension}"
    return Response(buffer.getvalue(), media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/objects/{object_id}/lightcurve.png", tags=["objects"], response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "The plot"}})
def lightcurve_image(object_id: int = OBJECT_ID):
    """An `Object`'s light curve: AB magnitude against MJD, per filter, with errors;
    measurements with flags (masked pixels, truncated, saturated) drawn hollow."""
    obj = load(object_id)
    if not isinstance(obj, targets.Object):
        raise HTTPException(404, f"{describe(obj)} is not an Object: it has no light curve")
    return Response(lightcurve_png(obj), media_type="image/png",
                    headers={"Cache-Control": "no-cache"})


def lightcurve_png(obj):
    """The PNG of `lightcurve_image`, drawn without pyplot's global state (requests
    run in threads)."""
    from matplotlib.figure import Figure

    table = obj.lightcurve()
    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.subplots()
    colours = {"u": "tab:purple", "g": "tab:green", "r": "tab:red", "i": "tab:brown",
               "z": "black"}
    shown = 0
    for band in sorted(set(table["filter"])):
        rows = table[(table["filter"] == band) & np.isfinite(np.asarray(table["mag"]))]
        if not len(rows):
            continue
        colour = colours.get(band, f"C{shown}")
        for flagged in (False, True):
            part = rows[(np.asarray(rows["flags"]) != 0) == flagged]
            if len(part):
                axes.errorbar(np.asarray(part["mjd"]), np.asarray(part["mag"]),
                              yerr=np.nan_to_num(np.asarray(part["mag_err"])), fmt="o",
                              color=colour, mfc="none" if flagged else colour, capsize=2,
                              label=f"{band}{' (flagged)' if flagged else ''}")
        shown += 1
    if shown:
        axes.invert_yaxis()
        axes.legend(fontsize=8)
    else:
        axes.text(0.5, 0.5, "no measurement with a magnitude", ha="center",
                  transform=axes.transAxes)
    axes.set_xlabel("MJD")
    axes.set_ylabel("AB magnitude")
    axes.set_title(f"Object {obj.object_id}: {len(table)} measurements", fontsize=10)
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


# -- judging: forms with a confirmation step ------------------------------------------

@router.post("/objects/{object_id}/validity", include_in_schema=False,
             dependencies=[Depends(require_csrf)])
def validity_form(request: Request, object_id: int = OBJECT_ID,
                  is_valid: int = Form(..., ge=0, le=2),
                  comment: str = Form(""), confirm: int = Form(0, ge=0, le=1),
                  who: Viewer = Depends(viewer)):
    """Without ``confirm``: what would change, and what would become outdated; with
    it, set the validity. The comment is checked once the object is found, so that
    who may not see it gets a 404 whatever they send."""
    who.require_login()
    obj = _product(load(object_id))
    comment = clean_text(comment)
    if confirm:
        curation.set_valid(obj, is_valid, comment=comment)
        return RedirectResponse(f"/objects/{object_id}?changed=validity", status_code=303)
    _check_may_judge(obj, who, "validity")
    outdated = impact(obj) if is_valid == 0 and obj.is_valid != 0 else []
    return render(request, "validity_confirm.html", who, obj=obj, label=describe(obj),
                  kind="validity",
                  action=f"/objects/{object_id}/validity",
                  fields={"is_valid": is_valid, "comment": comment},
                  changes=[("is_valid", f"{obj.is_valid} ({VALIDITY[obj.is_valid]})",
                            f"{is_valid} ({VALIDITY[is_valid]})")],
                  impact=[ref(p) for p in outdated], to_valid=is_valid != 0,
                  was_invalid=obj.is_valid == 0)


@router.post("/objects/{object_id}/validity-window", include_in_schema=False,
             dependencies=[Depends(require_csrf)])
def window_form(request: Request, object_id: int = OBJECT_ID,
                start: str = Form(...), end: str = Form(...), comment: str = Form(""),
                confirm: int = Form(0, ge=0, le=1), who: Viewer = Depends(viewer)):
    """As `validity_form`, for a calibration's validity window."""
    who.require_login()
    obj = _calibration(load(object_id))
    comment = clean_text(comment)
    start_time, end_time = parse_time(start, "start"), parse_time(end, "end")
    if not start_time < end_time:
        raise ValueError(f"a validity window ends after its start; got {start} to {end}")
    if confirm:
        curation.set_validity_window(obj, start_time, end_time, comment=comment)
        return RedirectResponse(f"/objects/{object_id}?changed=window", status_code=303)
    _check_may_judge(obj, who, "validity window")
    shown = lambda t: t.isoformat(sep=" ", timespec="seconds") if t else "—"  # noqa: E731
    return render(request, "validity_confirm.html", who, obj=obj, label=describe(obj),
                  kind="window",
                  action=f"/objects/{object_id}/validity-window",
                  fields={"start": start, "end": end, "comment": comment},
                  changes=[("timestamp_start", shown(obj.timestamp_start), shown(start_time)),
                           ("timestamp_end", shown(obj.timestamp_end), shown(end_time))],
                  impact=[ref(p) for p in window_impact(obj, start_time, end_time)])


def _check_may_judge(obj, who, what):
    """Refuse the confirmation page to who may not confirm (`set_valid` checks again)."""
    if not who.may_judge(obj):
        raise curation.PermissionDenied(
            f"{who.user} may not change the {what} of {describe(obj)} (project "
            f"{obj.project}, privileges {obj.privileges}): only its owner while it is in "
            f"MyDB, or a calibrator or manager of {obj.project}")


# -- the JSON API -------------------------------------------------------------------

@router.get("/api/objects/{object_id}", response_model=ObjectOut, tags=["objects"])
def get_object(object_id: int = OBJECT_ID, who: Viewer = Depends(viewer)):
    """An object: its class, attributes (with docs), process parameters, quality
    flags, validity, validity window and audit trail."""
    return object_out(load(object_id), who)


@router.get("/api/objects/{object_id}/lineage", response_model=GraphOut, tags=["objects"])
def get_lineage(object_id: int = OBJECT_ID):
    """Everything the object was made from, recursively, down to the raw data."""
    obj = load(object_id)
    return graph_out(upstream(obj), obj, downward=False)


@router.get("/api/objects/{object_id}/dependents", response_model=GraphOut,
            tags=["objects"])
def get_dependents(object_id: int = OBJECT_ID):
    """Everything made from the object, recursively."""
    obj = load(object_id)
    return graph_out(downstream(obj), obj, downward=True)


@router.get("/api/objects/{object_id}/impact", response_model=list[ObjectRef],
            tags=["objects"])
def get_impact(object_id: int = OBJECT_ID):
    """The valid products that would become outdated if the object were invalidated
    (`targets.lineage.impact`)."""
    return [ref(p) for p in impact(load(object_id))]


@router.post("/api/objects/{object_id}/validity", response_model=ObjectOut,
             tags=["objects"], dependencies=[Depends(require_csrf)])
def set_validity(body: ValidityIn, object_id: int = OBJECT_ID,
                 who: Viewer = Depends(viewer)):
    """Set a product's validity (a calibrator of its project, or its owner in MyDB);
    the change goes into its audit trail. GET .../impact first tells what an
    invalidation outdates."""
    who.require_login()
    obj = _product(load(object_id))
    curation.set_valid(obj, body.is_valid, comment=body.comment)
    return object_out(obj, who)


@router.post("/api/objects/{object_id}/validity-window", response_model=ObjectOut,
             tags=["objects"], dependencies=[Depends(require_csrf)])
def set_window(body: WindowIn, object_id: int = OBJECT_ID, who: Viewer = Depends(viewer)):
    """Set a calibration's validity window (as `set_validity`, who may)."""
    who.require_login()
    obj = _calibration(load(object_id))
    start, end = utc(body.start, "start"), utc(body.end, "end")
    if not start < end:
        raise ValueError(f"a validity window ends after its start; got "
                         f"{body.start.isoformat()} to {body.end.isoformat()}")
    curation.set_validity_window(obj, start, end, comment=body.comment)
    return object_out(obj, who)
