"""The work behind ``awe lineage``, ``awe dependents``, ``awe show`` and ``awe query``:
looking at what is in the database."""

import datetime

import persistence

from ..environment import connect
from ..preview import preview_png

__all__ = ["load_object", "preview_png", "query_table", "show_lines", "votable_ready"]


def load_object(object_id):
    """Connect and load the object with ``object_id``, as its own class."""
    connect()
    try:
        return persistence.DBObject.load(int(object_id))
    except persistence.ObjectNotFoundError:
        raise ValueError(f"no object has id {object_id}; find ids with awe query, e.g. "
                         "awe query 'CalibratedExposure.all()'") from None


def show_lines(obj):
    """``obj``'s persistent attributes, one per line: name, value, and what it means."""
    properties = type(obj).get_persistent_properties()
    values = {name: _shown(getattr(obj, name)) for name, prop in properties.items()}
    if "quality_flags" in values and obj.quality_flags:
        values["quality_flags"] += f" ({', '.join(obj.quality_flag_names())})"
    for name, prop in properties.items():
        values[name] += (f" (set by {prop.logged_by})" if prop.logged_by
                         else " (mutable)" if prop.mutable else "")
    width = max(len(name) for name in properties)
    value_width = min(max(map(len, values.values())), 48)
    lines = [f"{type(obj).__name__} {obj.object_id}"]
    for name, prop in properties.items():
        lines.append(f"  {name:<{width}}  {values[name]:<{value_width}}  # {prop.doc}")
    if getattr(obj, "QUALITY_FLAGS", None):
        lines.append("quality flags verify() sets:")
        lines += [f"  {flag.name} (bit {flag.bit}): {flag.doc}"
                  for flag in obj.QUALITY_FLAGS.values()]
    if hasattr(obj, "audit_trail"):
        trail = obj.audit_trail()
        lines.append("audit trail:" if trail else "audit trail: no changes")
        lines += [f"  {record}" for record in trail]
    return lines


def _shown(value):
    if isinstance(value, persistence.DBObject):
        return f"{type(value).__name__} {value.object_id}"
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], persistence.DBObject):
            ids = [str(v.object_id) for v in value]
            more = f", ... ({len(ids)})" if len(ids) > 8 else ""
            return f"[{type(value[0]).__name__} {', '.join(ids[:8])}{more}]"
        text = repr(list(value))
        return text if len(text) <= 80 else text[:77] + "..."
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return repr(value)


def query_table(expression, columns=()):
    """Connect, evaluate ``expression`` (a query on the product classes, e.g.
    ``(CalibratedExposure.filter == 'r') & (CalibratedExposure.seeing < 1.2)``) and return
    its result as an astropy Table of ``columns`` (names or dotted paths)."""
    import targets  # noqa: F401  (defines the product classes the expression names)

    connect()
    names = {cls.__name__: cls for cls in persistence.registered_classes()}
    try:
        result = eval(expression, {"__builtins__": {}}, names)
    except Exception as err:
        raise ValueError(f"the query {expression!r} does not evaluate: {err}; write a "
                         "query on a class, e.g. \"CalibratedExposure.filter == 'r'\"") from None
    if isinstance(result, type) and issubclass(result, persistence.DBObject):
        result = result.all()
    if not isinstance(result, persistence.Query):
        raise ValueError(f"{expression!r} is a {type(result).__name__}, not a query; write "
                         "e.g. \"CalibratedExposure.filter == 'r'\"")
    return result.to_table(*columns)


def votable_ready(table):
    """``table`` with its times as ISO 8601 text (UTC), which VOTable takes, unlike
    astropy's Time columns."""
    from astropy.time import Time

    table = table.copy(copy_data=False)
    for name in table.colnames:
        if isinstance(table[name], Time):
            table[name] = table[name].isot
    return table
