"""Dependency declarations: what a target needs, in which role, and how it is selected."""

from persistence import Persistent

__all__ = ["Dependency", "dependency"]


def dependency(doc, cls, *, many=False, optional=False, query=None, selectors=None,
               accept_flagged=False):
    """Declare a dependency of a `ProcessTarget` subclass.

    The dependency is also a persistent attribute: a product records which objects it
    used, in this role.

    Parameters
    ----------
    doc : `str`
        What the dependency is for.
    cls : `type` or `str`
        The class it needs (or its name).
    many : `bool`
        Whether it is a list of objects rather than one.
    optional : `bool`
        Whether the target can be made without it.
    query : callable, optional
        For inputs that are only ever selected, never made (raw frames): given the
        target's selectors (a dict), return a `persistence.Query` for the objects to
        use. They are used in ``object_id`` order.
    selectors : callable, optional
        For inputs that are targets themselves (made if missing): given the target's
        selectors, return the selectors to get the dependency with (a dict; a list of
        dicts if ``many``). The dependency class's own rule picks among its products,
        e.g. the newest valid calibration covering the observation time.
    accept_flagged : `bool`
        Whether a target input may be used while it has quality flags no person has
        judged yet (a report of the flags, say). By default such an input stops the
        product from being made until someone sets its validity.

    Examples
    --------
    >>> class MasterFlat(CalibrationTarget):
    ...     raw_flats = dependency("Dome flats of the night", RawFlat, many=True,
    ...                            query=lambda s: (RawFlat.chip == s["chip"])
    ...                            & (RawFlat.filter == s["filter"]))
    ...     bias = dependency("Bias to subtract", "MasterBias",
    ...                       selectors=lambda s: {"chip": s["chip"], "time": s["time"]})
    """
    if (query is None) == (selectors is None):
        raise TypeError(f"dependency {doc!r}: give exactly one of query= (inputs selected "
                        "from what exists) or selectors= (inputs that are targets)")
    return Dependency(doc, [cls] if many else cls, [] if many else None, many=many,
                      optional=optional, query=query, selectors=selectors,
                      accept_flagged=accept_flagged)


class Dependency(Persistent):
    """The descriptor behind `dependency`; see that function for the parameters."""

    def __init__(self, doc, type_, default, *, many, optional, query, selectors,
                 accept_flagged=False):
        super().__init__(doc, type_, default)
        self.many, self.optional, self.accept_flagged = many, optional, accept_flagged
        self.query, self.child_selectors = query, selectors

    @property
    def is_target(self):
        """Whether the dependency is a target that is made if missing."""
        return self.child_selectors is not None
