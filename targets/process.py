"""ProcessTarget: a data product that knows how to make itself, and calibrations."""

import contextlib
import contextvars
import dataclasses
import datetime
import tempfile
from pathlib import Path

from dataserver import file_checksum
from persistence import DBObject, persistent

from .dataobject import DataObject
from .dependency import Dependency
from .parameters import ProcessParameters
from .quality import NO_FLAGS, bit_names

__all__ = ["CalibrationTarget", "ProcessTarget", "Reproduction", "project_parameters",
           "set_project_parameters", "using_project_parameters"]


_project_parameters = {}
_acting_parameters = contextvars.ContextVar("project_parameters", default=None)
"""The parameters `using_project_parameters` put in force in this thread or task."""


def set_project_parameters(parameters):
    """Set the project's process parameters: ``{target class name: {name: value}}``,
    overriding the class defaults (``awe.connect()`` sets them from the configuration).

    Examples
    --------
    >>> set_project_parameters({"MasterFlat": {"sigma_clip": 2.5}})
    """
    global _project_parameters
    _project_parameters = {name: dict(values) for name, values in (parameters or {}).items()}


@contextlib.contextmanager
def using_project_parameters(parameters):
    """Put a project's process parameters (as for `set_project_parameters`) in force
    inside the block, in this thread or task only: a server works for several
    projects at once."""
    token = _acting_parameters.set(
        {name: dict(values) for name, values in (parameters or {}).items()})
    try:
        yield
    finally:
        _acting_parameters.reset(token)


def project_parameters(name):
    """The project's overrides of the process parameters of ``name`` (a target class
    name, or ``"Object"`` for the association): ``{parameter: value}``."""
    acting = _acting_parameters.get()
    return dict((_project_parameters if acting is None else acting).get(name, {}))


class ProcessTarget(DataObject):
    """A product made from its dependencies by `make`.

    A subclass declares its dependencies (`targets.dependency`), its ``SELECTORS`` (the
    names a user asks for a product by), its ``Parameters`` (a `ProcessParameters`
    subclass, if it has any) and its ``CODE_VERSION``, and implements `make` (and, if it
    sets quality flags, `verify`). Users call `get` and `plan`.
    """

    CODE_VERSION = "1"
    """Bumped by hand when the output of `make` changes; products made by another
    version are outdated. Not a hash of the source: a cosmetic edit changes nothing."""
    SELECTORS = ()
    """The selectors a product is asked for by. Those that are attributes of the class
    are recorded on each product and must match for it to be selected."""
    Parameters = ProcessParameters
    """The class of the process parameters."""

    code_version = persistent("CODE_VERSION of the class when the product was made", str, "")
    process_parameters = persistent("Process parameters in force when it was made",
                                    ProcessParameters, None)
    is_valid = persistent("0 invalid (never selected), 1 valid, 2 proposed for promotion",
                          int, 1, mutable="context.set_valid")
    quality_flags = persistent("Quality flags set by verify(): a bit mask, 0 for none",
                               int, 0)
    reviewed_date = persistent("When a person last set is_valid (UTC); None if nobody "
                               "has: a product with quality flags is selected only after",
                               datetime.datetime, None, mutable="context.set_valid")
    QUALITY_FLAGS = NO_FLAGS
    """The quality flags `verify` may set: name -> `targets.QualityFlag`, declared with
    `targets.quality.flags`. Empty for a class that sets none."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__doc__ = f"{cls.__doc__}\n\n{_document_processing(cls)}"

    # -- declarations ------------------------------------------------------------

    @classmethod
    def dependencies(cls):
        """The dependencies, by role name, in declaration order (inherited first)."""
        found = cls.__dict__.get("_dependencies")
        if found is None:  # asked for every node planned: worked out once per class
            found = {name: prop for name, prop in cls.get_persistent_properties().items()
                     if isinstance(prop, Dependency)}
            cls._dependencies = found
        return found

    @classmethod
    def parameters_in_force(cls, overrides=None):
        """New `Parameters`: the class defaults, then the project's (see
        `set_project_parameters`), then ``overrides``."""
        return cls.Parameters.in_force({**project_parameters(cls.__name__),
                                        **(overrides or {})})

    @classmethod
    def check_selectors(cls, selectors):
        """Return ``selectors`` if they are exactly the class's ``SELECTORS``."""
        unknown = sorted(set(selectors) - set(cls.SELECTORS))
        missing = [name for name in cls.SELECTORS if name not in selectors]
        if unknown or missing:
            raise TypeError(
                f"{cls.__name__} is asked for by {', '.join(cls.SELECTORS) or 'nothing'}; "
                + "; ".join(filter(None, [
                    unknown and f"unknown: {', '.join(unknown)}",
                    missing and f"missing: {', '.join(missing)}"])))
        return selectors

    @classmethod
    def identity(cls, selectors):
        """What makes two requests ask for the same product: by default the selectors
        themselves. Requests with equal identities share one node in a plan."""
        return selectors

    @classmethod
    def candidates(cls, selectors):
        """The valid products for ``selectors``, newest first: a `persistence.Query`."""
        return cls.matching(selectors).order_by("object_id", descending=True)

    @classmethod
    def matching(cls, selectors):
        """The condition a valid product for ``selectors`` meets: by default, every
        selector that is an attribute of the class equals its value."""
        query = cls.is_valid != 0
        for name, value in selectors.items():
            if name in cls.get_persistent_properties():
                query = query & (getattr(cls, name) == value)
        return query

    @classmethod
    def new(cls, selectors):
        """A new, empty product for ``selectors`` (attributes set from them)."""
        properties = cls.get_persistent_properties()
        return cls(**{name: value for name, value in selectors.items() if name in properties})

    # -- what subclasses implement -------------------------------------------------

    def make(self, workdir):
        """Compute the product from its dependencies (already set as attributes), write
        its file in ``workdir`` (a scratch directory) and return the file's path.

        Pure algorithms belong in functions that know nothing of the database: `make`
        retrieves the inputs, calls them and writes the result. The file is stored
        only after `make` and `verify` succeed, so a failure leaves nothing behind.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement make()")

    def verify(self, path):
        """Set `quality_flags` from the made file at ``path``. The default sets none."""

    @classmethod
    def flag_bits(cls, **conditions):
        """The ``quality_flags`` of the flags, by name, whose condition is true: what
        `verify` sets, e.g. ``self.flag_bits(level=abs(self.level) > pars.max_level)``.

        Raises
        ------
        KeyError
            Raised if a name is not one of the class's ``QUALITY_FLAGS``.
        """
        unknown = sorted(set(conditions) - set(cls.QUALITY_FLAGS))
        if unknown:
            raise KeyError(f"{cls.__name__} declares no quality flag {', '.join(unknown)}; "
                           f"its flags are: {', '.join(cls.QUALITY_FLAGS) or 'none'} "
                           "(declare new ones in its QUALITY_FLAGS)")
        return sum(cls.QUALITY_FLAGS[name].bit for name, on in conditions.items() if on)

    @classmethod
    def flag_names(cls, bits):
        """The names of the quality flags set in ``bits``, in declaration order; a bit
        the class does not declare shows as ``'bit 8'``."""
        return bit_names(cls.QUALITY_FLAGS, bits)

    def quality_flag_names(self):
        """The names of the quality flags `verify` set on this product."""
        return type(self).flag_names(self.quality_flags)

    # -- the user's calls ----------------------------------------------------------

    @classmethod
    def plan(cls, *, pars=None, depth=None, **selectors):
        """What `get` would do, without making anything: a `targets.Plan`.

        Parameters
        ----------
        pars : `dict`, optional
            Process parameters overriding the defaults (the class's, then the
            project's) for this target.
        depth : `int`, optional
            How many levels of dependencies to check; those beyond are "not checked".
        **selectors
            The target's ``SELECTORS``.
        """
        from .plan import make_plan

        return make_plan(cls, cls.check_selectors(selectors), pars=pars, depth=depth)

    @classmethod
    def get(cls, *, pars=None, dpu=None, **selectors):
        """Return the up-to-date product for ``selectors``, making what is missing or
        outdated (recursively) and committing it.

        Raises
        ------
        targets.MissingInputError
            Raised, before anything is made, if an input cannot be found.
        targets.MakeError
            Raised if a make failed; what finished is kept, the failed product is not.
        """
        from .dpu import SerialDPU

        plan = cls.plan(pars=pars, **selectors)
        plan.check_inputs()
        (dpu or SerialDPU()).execute(plan)
        return plan.product()


    def reproduce(self):
        """Make this product again from its recorded inputs, process parameters and
        selectors, with the current code, and compare the file's checksum with the
        recorded one. Nothing is stored or committed.

        Returns
        -------
        reproduction : `Reproduction`
        """
        skip = set(DBObject.get_persistent_properties()) | {"filename", "file_size", "checksum"}
        copy = type(self)(**{name: getattr(self, name)
                             for name in self.get_persistent_properties() if name not in skip})
        with tempfile.TemporaryDirectory(prefix="awe-reproduce-") as workdir:
            checksum = file_checksum(copy.make(Path(workdir)))
        return Reproduction(self, self.checksum, checksum, type(self).CODE_VERSION)


def _document_processing(cls):
    """How ``cls`` is asked for and made, for help(): its selectors, dependencies,
    process parameters with their defaults, and quality flags."""
    lines = ["Selectors", "---------", ", ".join(cls.SELECTORS) or "(none)", "",
             "Dependencies", "------------"]
    for name, dep in cls.dependencies().items():
        kind = (f"list of {dep.type_name().removeprefix('list of ')}" if dep.many
                else dep.type_name()) + (" (optional)" if dep.optional else "")
        lines += [f"{name} : {kind}", f"    {dep.doc}"]
    if not cls.dependencies():
        lines.append("(none: made from its selectors alone)")
    title = (f"Process parameters ({cls.Parameters.__name__}, code version "
             f"{cls.CODE_VERSION})")
    lines += ["", title, "-" * len(title)]
    properties = cls.Parameters.get_persistent_properties()
    for name in cls.Parameters.names():
        prop = properties[name]
        lines += [f"{name} : {prop.type_name()} = {prop.default!r}", f"    {prop.doc}"]
    if not cls.Parameters.names():
        lines.append("(none)")
    lines += ["", "Quality flags (set by verify)", "-----------------------------"]
    for flag in cls.QUALITY_FLAGS.values():
        lines += [f"{flag.name} : bit {flag.bit}", f"    {flag.doc}"]
    if not cls.QUALITY_FLAGS:
        lines.append("(none)")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """The result of `ProcessTarget.reproduce`."""

    product: ProcessTarget
    recorded: str
    """The checksum recorded when the product was made."""
    reproduced: str
    """The checksum of the file made again."""
    code_version: str
    """The code version that made it again."""

    @property
    def identical(self):
        return self.recorded == self.reproduced

    def __str__(self):
        what = f"{describe(self.product)}"
        if self.identical:
            return f"{what} reproduced exactly ({self.reproduced})"
        versions = ("" if self.product.code_version == self.code_version else
                    f"; it was made by code version {self.product.code_version!r}, "
                    f"this is {self.code_version!r}")
        return (f"{what} did not reproduce: recorded {self.recorded}, made again "
                f"{self.reproduced}{versions}")


class CalibrationTarget(ProcessTarget):
    """A calibration product, valid for a window of time.

    Asked for with a ``time`` selector (the observation to calibrate), it selects the
    newest valid product whose window covers that time and whose process parameters
    are compatible; a new one is valid for `validity_window` of the time.
    """

    SELECTORS = ("time",)

    timestamp_start = persistent("Start of the validity window (UTC)", datetime.datetime,
                                 None, mutable="context.set_validity_window")
    timestamp_end = persistent("End of the validity window (UTC), exclusive",
                               datetime.datetime, None, mutable="context.set_validity_window")

    @classmethod
    def validity_window(cls, selectors):
        """The window a new product made for ``selectors`` is valid in: by default the
        night of ``selectors['time']``, noon to noon UTC. A subclass that knows where
        the observatory is uses its local night."""
        time = selectors["time"]
        start = datetime.datetime.combine(
            (time - datetime.timedelta(hours=12)).date(), datetime.time(12))
        return start, start + datetime.timedelta(days=1)

    @classmethod
    def identity(cls, selectors):
        """Observations in the same validity window need the same calibration."""
        others = {k: v for k, v in selectors.items() if k != "time"}
        return {**others, "time": cls.validity_window(selectors)[0]}

    @classmethod
    def matching(cls, selectors):
        """Valid, matching the other selectors, with a window that covers ``time``."""
        time = selectors["time"]
        return (super().matching({k: v for k, v in selectors.items() if k != "time"})
                & (cls.timestamp_start <= time) & (cls.timestamp_end > time))

    @classmethod
    def new(cls, selectors):
        obj = super().new({k: v for k, v in selectors.items() if k != "time"})
        obj.timestamp_start, obj.timestamp_end = cls.validity_window(selectors)
        return obj


def describe(obj):
    """``'MasterBias 812'``: how reasons name a product."""
    return f"{type(obj).__name__} {obj.object_id}" if isinstance(obj, DBObject) else repr(obj)
