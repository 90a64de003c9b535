"""The calibration timeline (``/calts``): the validity windows of one calibration type
and chip over the nights (Astro-WISE's CalTS), which product covers which night.

A product is *eclipsed* on a night when a newer valid one of the same filter, made
with the same process parameters, covers that night too: `get()` selects the newer one
there, whereas a newer product made with other parameters replaces nothing. Cells of
the product selected now, with the parameters in force in the user's project, are
marked ``selected``.
"""

import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request

import persistence
import targets
from targets import curation
from targets.instruments import night_of, night_window

from .objects import clean_text, ref, scalar
from .processing import render
from .session import Viewer, viewer

__all__ = ["CALIBRATION_TYPES", "router", "timeline"]

router = APIRouter()

CALIBRATION_TYPES = ("MasterBias", "HotPixelMap", "MasterFlat", "ColdPixelMap")
"""The calibrations `/calts` draws."""
MAX_NIGHTS = 400
"""Most nights (columns) a timeline shows."""
FIRST_NIGHT, LAST_NIGHT = datetime.date(1800, 1, 1), datetime.date(2999, 12, 31)
"""The nights a timeline may be asked to show."""


def timeline(cls, chip, filter_="", first=None, last=None):
    """The validity windows of the ``cls`` products of ``chip`` (a chip name) and
    ``filter_`` (every filter if empty) over the nights they span.

    Returns
    -------
    nights : `list` of `datetime.date`
        The nights shown (local date at the start of each, at the chip's observatory).
    rows : `list` of `dict`
        One per product, oldest window first: the product, its window, validity,
        parameters, whether it is ``eclipsed`` (on every night it covers) or
        ``invalid``, and per night a cell (None where it does not cover the night).
    note : `str`
        Said when the span was cut to `MAX_NIGHTS`.
    """
    query = cls.chip.name == chip
    has_filter = "filter" in cls.get_persistent_properties()
    if has_filter and filter_:
        query = query & (cls.filter == filter_)
    products = [p for p in query.order_by("timestamp_start")
                if p.timestamp_start is not None and p.timestamp_end is not None
                and p.timestamp_start < p.timestamp_end]
    if not products:
        return [], [], ""
    zone = products[0].chip.tzinfo()
    starts = [night_of(p.timestamp_start, zone) for p in products]
    ends = [night_of(p.timestamp_end - datetime.timedelta(microseconds=1), zone)
            for p in products]
    note = ""
    first = first or min(starts)
    last = last or max(ends)
    if (last - first).days >= MAX_NIGHTS:
        if first == min(starts):
            first = last - datetime.timedelta(days=MAX_NIGHTS - 1)
        else:
            last = first + datetime.timedelta(days=MAX_NIGHTS - 1)
        note = (f"showing {MAX_NIGHTS} nights, {first} to {last}: choose the first and "
                "last night to see others")
    nights = [first + datetime.timedelta(days=k) for k in range((last - first).days + 1)]
    windows = [night_window(n, zone) for n in nights]
    in_force = cls.parameters_in_force().as_dict()
    pars = {p: p.process_parameters.as_dict() if p.process_parameters else {}
            for p in products}
    # Products compete for a night only with those of the same filter and parameters.
    key = {p: (getattr(p, "filter", ""), tuple(sorted(pars[p].items()))) for p in products}
    covered = {}     # product -> [night index]
    newest = {}      # (night index, key) -> newest usable product covering it
    for product, start, end in zip(products, starts, ends):
        lo, hi = max((start - first).days, 0), min((end - first).days, len(nights) - 1)
        covered[product] = list(range(lo, hi + 1))
        if product.is_valid != 0 and not curation.awaits_review(product):
            for k in covered[product]:
                best = newest.get((k, key[product]))
                if best is None or best.object_id < product.object_id:
                    newest[(k, key[product])] = product
    rows = []
    shown = (p for p in products if covered[p])  # those with a window in the span
    for product in sorted(shown, key=lambda p: (getattr(p, "filter", ""),
                                                p.timestamp_start, p.object_id)):
        cells = [None] * len(nights)
        eclipsed_on = []
        for k in covered[product]:
            night_start, night_end = windows[k]
            winner = newest.get((k, key[product]))
            eclipsed = winner is not None and winner.object_id > product.object_id
            eclipsed_on.append(eclipsed)
            cells[k] = {
                "partial": product.timestamp_start > night_start
                or product.timestamp_end < night_end,
                "eclipsed": eclipsed,
                "selected": winner is product and pars[product] == in_force,
                "by": winner.object_id if eclipsed else None}
        rows.append({
            "ref": ref(product), "filter": getattr(product, "filter", ""),
            "start": f"{product.timestamp_start:%Y-%m-%d %H:%M}",
            "end": f"{product.timestamp_end:%Y-%m-%d %H:%M}",
            "is_valid": product.is_valid, "invalid": product.is_valid == 0,
            "awaiting": curation.awaits_review(product),
            "eclipsed": bool(eclipsed_on) and all(eclipsed_on) and product.is_valid != 0,
            "parameters": ", ".join(f"{k}={scalar(v)}" for k, v in pars[product].items()),
            "other_parameters": pars[product] != in_force, "cells": cells})
    return nights, rows, note


def _night(text):
    """A night asked for (``'2024-03-11'``), or None for an empty field."""
    if not text.strip():
        return None
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"night {text!r} is not a date such as 2024-03-11") from None


@router.get("/calts", include_in_schema=False)
def calts_page(request: Request,
               type: Literal[CALIBRATION_TYPES] = "MasterBias",  # noqa: A002
               chip: str = Query("", max_length=100),
               filter: str = Query("", max_length=20),  # noqa: A002
               first_night: str = Query("", max_length=10, description="YYYY-MM-DD"),
               last_night: str = Query("", max_length=10, description="YYYY-MM-DD"),
               who: Viewer = Depends(viewer)):
    """The calibration timeline of one type and chip (and filter); empty nights (as
    the form sends them) are the span of the products."""
    chip, filter = clean_text(chip, "chip", 100), clean_text(filter, "filter", 20)
    first_night, last_night = _night(first_night), _night(last_night)
    for night in (first_night, last_night):
        if night is not None and not FIRST_NIGHT <= night <= LAST_NIGHT:
            raise ValueError(f"the night {night} is not between {FIRST_NIGHT} and "
                             f"{LAST_NIGHT}")
    if first_night and last_night and not first_night <= last_night:
        raise ValueError(f"the first night {first_night} is after the last {last_night}")
    if first_night and last_night and (last_night - first_night).days >= MAX_NIGHTS:
        raise ValueError(f"a timeline shows at most {MAX_NIGHTS} nights; choose a "
                         "shorter span")
    chips = sorted(set(targets.Chip.all().columns("name")["name"].tolist()))
    chip = chip or (chips[0] if chips else "")
    cls = persistence.registered_class(type)
    has_filter = "filter" in cls.get_persistent_properties()
    filters = sorted(f for f in set(targets.RawFlatFrame.all().columns("filter")["filter"]
                                    .tolist()) if f)
    nights, rows, note = timeline(cls, chip, filter if has_filter else "",
                                  first_night, last_night)
    return render(request, "calts.html", who, types=CALIBRATION_TYPES, type=type,
                  chips=chips, chip=chip, filters=filters, filter=filter,
                  has_filter=has_filter, nights=nights, rows=rows, note=note,
                  first_night=first_night or "", last_night=last_night or "")
