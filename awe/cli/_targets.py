"""The work behind ``awe plan`` and ``awe get``: targets named on the command line."""

import ast
import datetime
import importlib

import persistence
import targets
from persistence import DBObject

from ..environment import connect, make_dpu

__all__ = ["get_target", "plan_target", "resolve_target"]


def resolve_target(name, selectors, modules=()):
    """Return the target class called ``name`` and its selectors made into values.

    A selector naming a reference takes an object id (``chip=812``) or, for classes
    with a ``name`` attribute, a name (``chip=ccd50``); a date-time takes ISO 8601
    (``time=2024-03-17T01:02:03``); other values are Python literals or text.

    Raises
    ------
    ValueError
        Raised if the target or a selector cannot be resolved; the message says how to
        write it.
    """
    for module in modules:
        importlib.import_module(module)
    try:
        cls = persistence.registered_class(name)
    except persistence.QueryError as err:
        raise ValueError(f"{err}; targets: {', '.join(_target_names()) or 'none'}") from None
    if not issubclass(cls, targets.ProcessTarget):
        raise ValueError(f"{name} is not a target; targets: {', '.join(_target_names())}")
    values = {}
    for text in selectors:
        key, sep, value = text.partition("=")
        if not sep:
            raise ValueError(f"selector {text!r} is not name=value, e.g. chip=ccd50")
        values[key] = _value(cls, key, value)
    return cls, cls.check_selectors(values)


def plan_target(*, name, selectors, depth=None, pars=None, modules=()):
    """Connect and plan; returns the `targets.Plan`."""
    connect()
    cls, values = resolve_target(name, selectors, modules)
    return cls.plan(pars=pars, depth=depth, **values)


def get_target(*, name, selectors, pars=None, dask=None, modules=()):
    """Connect and get the target, making what is needed on the DPU ``dask`` names
    (see `awe.environment.make_dpu`; None: the configured one); returns the product."""
    connect()
    cls, values = resolve_target(name, selectors, modules)
    with make_dpu(dask) as dpu:
        return cls.get(pars=pars, dpu=dpu, **values)


def parse_pars(items):
    """``["clip=2.5"]`` → ``{"clip": 2.5}``: process parameters from the command line."""
    pars = {}
    for text in items:
        key, sep, value = text.partition("=")
        if not sep:
            raise ValueError(f"parameter {text!r} is not name=value, e.g. clip=2.5")
        pars[key] = _literal(value)
    return pars


def _value(cls, key, text):
    prop = cls.get_persistent_properties().get(key)
    wanted = prop.type if prop is not None else (datetime.datetime if key == "time" else None)
    if isinstance(wanted, type) and issubclass(wanted, DBObject):
        return _object(wanted, key, text)
    if wanted is datetime.datetime:
        try:
            return datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{key}={text!r} is not an ISO 8601 date-time, e.g. "
                             f"{key}=2024-03-17T01:02:03") from None
    return _literal(text)


def _object(cls, key, text):
    if text.isdigit():
        found = cls.object_id == int(text)
    elif "name" in cls.get_persistent_properties():
        found = cls.name == text
    else:
        raise ValueError(f"{key}={text!r}: give the object id of a {cls.__name__}")
    objects = list(found)
    if len(objects) != 1:
        raise ValueError(f"{key}={text!r} matches {len(objects)} {cls.__name__} objects; "
                         "give an object id")
    return objects[0]


def _literal(text):
    """A Python literal, as in parameters.ini (``2.5``, ``True``, ``'r'``), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _target_names():
    return sorted(c.__name__ for c in persistence.registered_classes()
                  if issubclass(c, targets.ProcessTarget)
                  and c not in (targets.ProcessTarget, targets.CalibrationTarget))
