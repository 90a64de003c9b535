"""`Pars`: a target's process parameters, shown with where each value comes from, and
overridden for a call."""

import collections.abc

from targets.process import project_parameters

__all__ = ["Pars"]


class Pars(collections.abc.Mapping):
    """The process parameters of ``target`` (a class with ``Parameters``, such as
    `targets.MasterFlat` or `targets.Object`): the class defaults, then the project's,
    then the overrides given here.

    As a mapping it holds the overrides only, so it goes straight into a call's
    ``pars=``. Setting an attribute overrides a parameter; the name and the type are
    checked at once.

    Examples
    --------
    >>> p = Pars(MasterFlat)                               # doctest: +SKIP
    >>> p                                                  # doctest: +SKIP
    MasterFlat process parameters (MasterFlatParameters)
    name        value     default   set by    meaning
    sigma       3.0       3.0       default   Rejection threshold ...
    >>> p.sigma = 2.5                                      # doctest: +SKIP
    >>> MasterFlat.get(chip=chip, filter="r", time=t, pars=p)   # doctest: +SKIP
    """

    def __init__(self, target, **overrides):
        parameters = getattr(target, "Parameters", None)
        if parameters is None or not hasattr(parameters, "names"):
            raise TypeError(f"{getattr(target, '__name__', target)!r} has no process "
                            "parameters; give a target class such as MasterFlat")
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_overrides", {})
        for name, value in overrides.items():
            setattr(self, name, value)

    # -- the overrides, as a mapping ----------------------------------------------------

    def __getitem__(self, name):
        return self._overrides[name]

    def __iter__(self):
        return iter(self._overrides)

    def __len__(self):
        return len(self._overrides)

    # -- the parameters in force ------------------------------------------------------

    def in_force(self):
        """The parameters object a call with ``pars=self`` would use."""
        return self._target.Parameters.in_force({**project_parameters(self._target.__name__),
                                                 **self._overrides})

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.in_force(), name)

    def __setattr__(self, name, value):
        # Made at once, so a misspelt name or a wrong type fails here, not in a get().
        self._target.Parameters.in_force({name: value})
        self._overrides[name] = value

    def __delattr__(self, name):
        """Drop an override: back to the project's value or the default."""
        self._overrides.pop(name, None)

    def __dir__(self):
        return [*self._target.Parameters.names(), "in_force"]

    def rows(self):
        """``(name, value, default, set by, meaning)`` for each parameter."""
        project = project_parameters(self._target.__name__)
        in_force = self.in_force()
        properties = self._target.Parameters.get_persistent_properties()
        return [(name, getattr(in_force, name), properties[name].default,
                 "you" if name in self._overrides else "project" if name in project
                 else "default", properties[name].doc)
                for name in self._target.Parameters.names()]

    def __repr__(self):
        header = ("name", "value", "default", "set by", "meaning")
        rows = [header] + [tuple(map(str, (n, repr(v), repr(d), s, m)))
                           for n, v, d, s, m in self.rows()]
        widths = [max(len(row[k]) for row in rows) for k in range(4)]
        lines = [f"{self._target.__name__} process parameters "
                 f"({self._target.Parameters.__name__})"]
        lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths))
                  + "  " + row[4] for row in rows]
        return "\n".join(lines)
