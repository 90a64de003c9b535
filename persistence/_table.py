"""Converting loaded objects to an astropy `~astropy.table.Table`."""

import datetime

import numpy as np

from .dbobject import DBObject

__all__ = ["objects_to_table"]


def objects_to_table(objects, names):
    """Return a table with one row per object and one column per dotted attribute name.

    A missing value anywhere along a path gives a masked entry; references show as
    object ids; datetimes become an astropy `~astropy.time.Time` column.
    """
    from astropy.table import Table

    return Table([_column(name, [_follow(obj, name.split(".")) for obj in objects])
                  for name in names], names=names)


def _follow(obj, steps):
    value = obj
    for step in steps:
        value = getattr(value, step)
        if value is None:
            return None
    if isinstance(value, DBObject):
        return value.object_id
    if isinstance(value, tuple):
        return [v.object_id if isinstance(v, DBObject) else v for v in value]
    return value


def _column(name, values):
    from astropy.table import Column, MaskedColumn
    from astropy.time import Time

    present = [v for v in values if v is not None]
    missing = [v is None for v in values]
    if not present:
        return MaskedColumn([0.0] * len(values), name=name, mask=missing)
    if isinstance(present[0], datetime.datetime):
        times = Time([present[0] if v is None else v for v in values], scale="utc")
        if any(missing):
            times[missing] = np.ma.masked
        return times
    if isinstance(present[0], list):
        return Column(values, name=name, dtype=object)
    if len(present) == len(values):
        return Column(values, name=name)
    filler = present[0]
    return MaskedColumn([filler if v is None else v for v in values], name=name,
                        mask=missing)
