"""Sky positions in the database: the zones index and cone searches.

A class with positions (`targets.Source`, `targets.Object`) declares ``ra``, ``dec``,
the zone and the unit vector as persistent attributes, names ``("zone", "ra")`` in its
``INDEXES``, and inherits `SkyIndexed`. ``Class.cone(ra, dec, radius)`` is then a query
like any other, answered by B-tree range scans on the index (one per zone the cone
touches, RA split at 0/360) and the exact test on the unit vector. This works on every
database; the arithmetic is `targets.imaging.skymatch`'s.
"""

import numpy as np
import sqlalchemy as sa

from persistence import Query

from .imaging.skymatch import ra_half_width, unit_vectors, zone_of

__all__ = ["SkyIndexed", "sky_columns"]


def sky_columns(ra, dec):
    """The index columns of positions: ``zone``, ``cx``, ``cy``, ``cz`` (a dict of
    arrays), as `SkyIndexed` classes store them beside ``ra`` and ``dec``."""
    x, y, z = unit_vectors(ra, dec)
    return {"zone": zone_of(dec), "cx": x, "cy": y, "cz": z}


class SkyIndexed:
    """Mixin of persistent classes with indexed sky positions: gives `cone`."""

    @classmethod
    def cone(cls, ra, dec, radius):
        """The objects within ``radius`` degrees of ``(ra, dec)`` (degrees): a query.

        Examples
        --------
        >>> bright = (Source.mag < 20) & Source.cone(150.1, 2.2, 10 / 3600)
        """
        ra, dec, radius = float(ra) % 360.0, float(dec), float(radius)
        if not (-90.0 <= dec <= 90.0) or not (0.0 <= radius <= 180.0):
            raise ValueError(f"cone({ra}, {dec}, {radius}): the declination must be in "
                             "[-90, 90] and the radius in [0, 180] degrees")
        zone, column_ra = cls.zone.sql_column(), cls.ra.sql_column()
        alpha = float(ra_half_width(dec, radius))
        if alpha >= 180.0:
            ranges = []
        elif ra - alpha < 0.0:
            ranges = [(0.0, ra + alpha), (ra - alpha + 360.0, 360.0)]
        elif ra + alpha >= 360.0:
            ranges = [(ra - alpha, 360.0), (0.0, ra + alpha - 360.0)]
        else:
            ranges = [(ra - alpha, ra + alpha)]
        zones = range(int(zone_of(dec - radius)), int(zone_of(dec + radius)) + 1)
        if ranges:
            scans = [(zone == z) & column_ra.between(low, high)
                     for z in zones for low, high in ranges]
            near = sa.or_(*scans)
        else:
            near = zone.between(zones.start, zones.stop - 1)
        x, y, z = (float(v) for v in unit_vectors(ra, dec))
        inside = (cls.cx.sql_column() * x + cls.cy.sql_column() * y
                  + cls.cz.sql_column() * z) >= float(np.cos(np.radians(radius)))
        return Query.where_sql(cls, sa.and_(near, inside),
                               f"cone({ra:.6f}, {dec:+.6f}, {radius * 3600:.2f} arcsec)")

