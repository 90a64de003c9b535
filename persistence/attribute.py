"""Persistent attribute declarations: `persistent()` and its descriptor.

A persistent attribute knows its documentation, its type and its default. Read on an
instance it gives the value (loading references in batches, see `persistence.loading`);
read on a class it gives a query expression (see `persistence.query`).
"""

import datetime
import numbers

from .errors import AttributeTypeError, ImmutableObjectError, UnknownAttributeError

__all__ = ["Persistent", "persistent"]

SCALAR_TYPES = (bool, int, float, str, datetime.datetime)

SCALAR = "scalar"
SCALAR_LIST = "scalar list"
REFERENCE = "reference"
REFERENCE_LIST = "reference list"


# A loaded object holds a reference it has not followed yet as the target's object id
# (an int: a followed reference is an object or None).

#: Marks a list of references that is not loaded yet.
PENDING_LIST = object()


def persistent(doc, type_, default, *, mutable=False):
    """Declare a persistent attribute of a `DBObject` subclass.

    Parameters
    ----------
    doc : `str`
        What the attribute means, with its unit, e.g. ``'Exposure time [s]'``.
    type_ : `type` or `list` of one `type` or `str`
        ``bool``, ``int``, ``float``, ``str``, ``datetime.datetime``; a `DBObject`
        subclass (a reference) or its name (a forward reference); or a one-element list
        of either (a list of scalars, or an ordered list of references).
    default
        The value of a new object; ``None`` or ``[]`` for references.
    mutable : `bool` or `str`, optional
        Whether the attribute may change after commit. True: changes are written by
        an explicit ``commit()`` of the object. A string names the only operation that
        may change it (e.g. ``'context.set_valid'`` for validity, which checks who may
        and keeps an audit trail); assigning it on a committed object then refuses,
        naming that operation, and the operation writes with `commit_changes`.

    Returns
    -------
    attribute : `Persistent`

    Examples
    --------
    >>> class Frame(DBObject):
    ...     exptime = persistent('Exposure time [s]', float, 0.0)
    ...     chip = persistent('The CCD', Chip, None)
    ...     raw_frames = persistent('Inputs', [RawFrame], [])
    """
    return Persistent(doc, type_, default, mutable=mutable)


class Persistent:
    """The descriptor behind `persistent`; see that function for the parameters."""

    def __init__(self, doc, type_, default, *, mutable=False, read_only=False):
        self.doc = self.__doc__ = doc
        self.mutable = mutable
        #: True for attributes the database assigns (object_id, creation_date).
        self.read_only = read_only
        self.name = None
        self.owner = None
        if isinstance(type_, list):
            if len(type_) != 1:
                raise TypeError(f"persistent({doc!r}): a list type names exactly one "
                                f"element type, e.g. [float] or [Frame]; got {type_!r}")
            element = type_[0]
            self.kind = SCALAR_LIST if element in SCALAR_TYPES else REFERENCE_LIST
            self._type = element
        else:
            self.kind = SCALAR if type_ in SCALAR_TYPES else REFERENCE
            self._type = type_
        if self.kind in (REFERENCE, REFERENCE_LIST) and not _is_class_ref(self._type):
            raise TypeError(f"persistent({doc!r}): type {type_!r} is not supported; use "
                            "bool, int, float, str, datetime.datetime, a DBObject "
                            "subclass (or its name), or a one-element list of these")
        self.default = default

    def __set_name__(self, owner, name):
        self.name = name
        self.owner = owner
        if self.default is not None:
            self.default = self.validate(self.default)

    @property
    def type(self):
        """The scalar type, or the referenced class (forward references resolved)."""
        if isinstance(self._type, str):
            from .dbobject import registered_class

            self._type = registered_class(self._type)
        return self._type

    @property
    def is_reference(self):
        return self.kind in (REFERENCE, REFERENCE_LIST)

    @property
    def logged_by(self):
        """The operation that alone changes the attribute after commit, or None."""
        return self.mutable if isinstance(self.mutable, str) else None

    def type_name(self):
        name = self._type if isinstance(self._type, str) else self._type.__name__
        return f"list of {name}" if self.kind in (SCALAR_LIST, REFERENCE_LIST) else name

    def new_value(self):
        """The default for a new object (a fresh list for list attributes)."""
        return list(self.default) if isinstance(self.default, list) else self.default

    # -- validation --------------------------------------------------------------

    def validate(self, value):
        """Return ``value`` converted to the declared type, or raise `AttributeTypeError`."""
        if self.kind in (SCALAR_LIST, REFERENCE_LIST):
            if value is None:
                return []
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise self._type_error(value)
            return [self._validate_one(v) for v in value]
        if value is None:
            return None
        return self._validate_one(value)

    def _validate_one(self, value):
        if self.kind in (REFERENCE, REFERENCE_LIST):
            if isinstance(value, self.type):
                return value
            raise self._type_error(value)
        expected = self._type
        if expected is bool:
            if isinstance(value, bool) or _is_numpy_bool(value):
                return bool(value)
        elif expected is int:
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                return int(value)
        elif expected is float:
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                return float(value)
        elif expected is str:
            if isinstance(value, str):
                return value
        elif expected is datetime.datetime:
            if isinstance(value, datetime.datetime):
                return to_utc(value)
        raise self._type_error(value)

    def _type_error(self, value):
        where = f"{self.owner.__name__}.{self.name}" if self.owner else self.doc
        return AttributeTypeError(
            f"{where} ({self.doc}) expects {self.type_name()}, got {type(value).__name__} "
            f"{value!r:.80}; convert the value or check the attribute name")

    # -- descriptor protocol -----------------------------------------------------

    def __get__(self, instance, owner):
        if instance is None:
            from .query import Attribute

            return Attribute(owner, (self,))
        value = instance._values[self.name]
        if self.kind == REFERENCE and type(value) is int:
            return instance._load_reference(self)
        if self.kind == REFERENCE_LIST:
            if value is PENDING_LIST:
                return instance._load_reference(self)
            return tuple(value) if instance._committed else value
        if self.kind == SCALAR_LIST and instance._committed:
            return tuple(value)
        return value

    def __set__(self, instance, value):
        if self.read_only:
            raise ImmutableObjectError(
                f"{type(instance).__name__}.{self.name} is assigned by the database "
                "when the object is committed; it cannot be set")
        if instance._committed:
            if not self.mutable:
                raise ImmutableObjectError(
                    f"{type(instance).__name__} {instance.object_id} is committed and "
                    f"immutable: {self.name!r} cannot change. Make a new object instead "
                    f"(attributes that may change: {instance.mutable_attributes() or 'none'})")
            if self.logged_by:
                raise ImmutableObjectError(
                    f"{type(instance).__name__}.{self.name} of a committed object changes "
                    f"only through {self.logged_by}(), which checks who may change it "
                    "and records the change in the audit trail")
            instance._dirty = instance._dirty | {self.name}
        instance._values[self.name] = self.validate(value)

    def __repr__(self):
        owner = self.owner.__name__ if self.owner else "?"
        return f"<persistent {owner}.{self.name}: {self.type_name()}, {self.doc!r}>"


def to_utc(value):
    """Return a naive datetime in UTC (aware datetimes are converted, naive are UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def _is_numpy_bool(value):
    return type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")


def _is_class_ref(type_):
    if isinstance(type_, str):
        return True
    from .dbobject import DBObject

    return isinstance(type_, type) and issubclass(type_, DBObject)


def unknown_attribute(cls, name):
    """Return the error for a missing attribute, listing the close matches."""
    import difflib

    names = sorted(cls.get_persistent_properties())
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"its attributes are {', '.join(names)}"
    return UnknownAttributeError(
        f"{cls.__name__} has no persistent attribute {name!r}; {hint}")
