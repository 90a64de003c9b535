"""`DBObject`, the base of every persistent class, and the registry of those classes.

A subclass declares its attributes with `persistent`; `__init_subclass__` collects them,
registers the class by name and defines its tables (the mapping lives in
`persistence.schema`). Instances are made in Python and written by `commit`; loaded
instances come from queries (`persistence.query`) or ``Class(object_id=n)``.
"""

import datetime

from . import schema
from .attribute import PENDING_LIST, REFERENCE, Persistent, unknown_attribute
from .errors import ObjectNotFoundError, QueryError, UnknownAttributeError

__all__ = ["DBObject", "registered_class", "registered_classes"]

_registry = {}
_registry_version = [0]

#: Attributes that every persistent object has; subclasses may not redeclare them.
BASE_ATTRIBUTES = ("object_id", "creation_date", "owner", "project", "privileges")


def registered_class(name):
    """Return the persistent class called ``name``.

    Raises
    ------
    LookupError
        Raised if no imported persistent class has that name.
    """
    try:
        return _registry[name]
    except KeyError:
        raise QueryError(
            f"no persistent class named {name!r} is imported; import the module that "
            "defines it before using it") from None


def registry_version():
    """A number that changes whenever a persistent class is defined or redefined."""
    return _registry_version[0]


def registered_classes():
    """Return every imported persistent class, base classes first."""
    return sorted(_registry.values(), key=lambda c: len(c.__mro__))


class _PersistentClassType(type):
    """Only so that a misspelt class attribute names the close matches."""

    def __getattr__(cls, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise unknown_attribute(cls, name)


class DBObject(metaclass=_PersistentClassType):
    """A persistent object: its attributes live in a database table row.

    Subclasses declare persistent attributes with `persistent`. New objects are made
    with keyword arguments and written with `commit`; an existing one is loaded with
    ``Class(object_id=n)``; ``Class.attribute`` builds queries.

    Examples
    --------
    >>> class Chip(DBObject):
    ...     name = persistent('CCD name', str, '')
    >>> chip = Chip(name='ccd50')
    >>> chip.commit()
    >>> Chip(object_id=chip.object_id).name
    'ccd50'
    >>> [c.name for c in Chip.name.like('ccd5*')]
    ['ccd50']
    """

    object_id = Persistent("Unique identifier of the object, over all classes", int, None,
                           read_only=True)
    creation_date = Persistent("When the object was committed (UTC)", datetime.datetime,
                               None, read_only=True)
    owner = Persistent("User who made the object", str, None)
    project = Persistent("Project the object belongs to", str, None)
    privileges = Persistent("Who may see the object: 1 owner, 2 project, 3 all users, "
                            "4 world", int, None, mutable="context.publish")

    _properties = {}
    _committed = False
    _dirty = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        persistent_bases = [b for b in cls.__bases__ if issubclass(b, DBObject)]
        if len(persistent_bases) != 1:
            raise TypeError(f"{cls.__name__}: a persistent class inherits from exactly one "
                            "persistent class (mixins without persistent attributes are fine)")
        own = {n: p for n, p in vars(cls).items() if isinstance(p, Persistent)}
        for name in own:
            if name in persistent_bases[0]._properties or name in BASE_ATTRIBUTES:
                raise TypeError(f"{cls.__name__}.{name} is already a persistent attribute "
                                "of a base class; choose another name")
        cls._properties = {**persistent_bases[0]._properties, **own}
        cls._table, cls._link_tables = schema.define_tables(cls, own)
        previous = _registry.get(cls.__name__)
        if previous is not None and (previous.__module__, previous.__qualname__) != (
                cls.__module__, cls.__qualname__):
            raise TypeError(
                f"a persistent class named {cls.__name__} is already defined in "
                f"{previous.__module__}; class names are table names and must be unique, "
                "so rename one of them")
        _registry[cls.__name__] = cls
        _registry_version[0] += 1
        cls.__doc__ = _document(cls)
        from .loading import forget_classes

        forget_classes()

    # -- making and loading objects ------------------------------------------------

    def __new__(cls, *args, object_id=None, **kwargs):
        if object_id is None:
            return super().__new__(cls)
        if kwargs or args:
            raise TypeError(f"{cls.__name__}(object_id=...) loads a committed object; "
                            "give no other arguments")
        return cls.load(object_id)

    def __init__(self, *, object_id=None, **values):
        if object_id is not None:
            return  # loaded by __new__
        properties = self._properties
        self._values = {name: prop.new_value() for name, prop in properties.items()}
        self._group = None
        for name, value in values.items():
            if name not in properties:
                raise unknown_attribute(type(self), name)
            setattr(self, name, value)

    @classmethod
    def load(cls, object_id):
        """Return the committed object with ``object_id``, as its own class.

        Raises
        ------
        ObjectNotFoundError
            Raised if no object of this class (or a subclass) has that id.
        """
        found = (cls.object_id == object_id).first()
        if found is not None:
            return found
        actual = (DBObject.object_id == object_id).first()
        if actual is not None:
            raise ObjectNotFoundError(
                f"object {object_id} is a {type(actual).__name__}, not a {cls.__name__}; "
                f"load it as {type(actual).__name__}(object_id={object_id})")
        from .database import current_database

        raise ObjectNotFoundError(
            f"no {cls.__name__} with object_id {object_id} that "
            f"{current_database().context.user or 'someone not logged in'} may see; "
            "check the id, or query for it, e.g. "
            f"{cls.__name__}.object_id.is_in([...])")

    # -- introspection ------------------------------------------------------------

    @classmethod
    def get_persistent_properties(cls):
        """Return the persistent attributes of this class, including inherited ones.

        Returns
        -------
        properties : `dict` [`str`, `Persistent`]
            By name; each has ``doc``, ``type``, ``default`` and ``mutable``.
        """
        return dict(cls._properties)

    @classmethod
    def mutable_attributes(cls):
        """Return the names of the attributes that may change after commit."""
        return sorted(n for n, p in cls._properties.items() if p.mutable)

    @classmethod
    def all(cls):
        """Return a query for every object of this class and its subclasses."""
        from .query import Query

        return Query(cls)

    @property
    def is_committed(self):
        """Whether the object is in the database (and so immutable)."""
        return self._committed

    # -- writing ------------------------------------------------------------------

    def commit(self):
        """Write the object, and every new object it references, in one transaction.

        For an object already committed, write the changes of its mutable attributes.

        Raises
        ------
        CommitError
            Raised if writing failed; nothing was written.
        """
        from .commit import commit_all

        commit_all([self])

    def reference_id(self, name):
        """The object id the reference ``name`` points to (None if none), without
        loading the object."""
        prop = self._properties.get(name)
        if prop is None or prop.kind != REFERENCE:
            raise UnknownAttributeError(f"{type(self).__name__}.{name} is not a reference "
                                        "to one object")
        value = self._values[name]
        return value.object_id if isinstance(value, DBObject) else value

    def validate_commit(self):
        """Check, just before a commit writes this new object, that it may be written.

        Raise (preferably `CommitError`, naming what is missing and what to do) to
        refuse: nothing of the commit is then written. The default accepts; classes
        whose objects need more than their attributes, such as a stored file, extend it.
        """

    def after_insert(self, connection):
        """Write, on ``connection`` (the commit's transaction, after this new object's
        row), rows that belong to the object and must be committed or rolled back with
        it, e.g. a catalogue's rows through `persistence.insert_many`. The default
        writes none."""

    # -- references ---------------------------------------------------------------

    def _load_reference(self, prop):
        from .loading import Group

        if self._group is not None:
            self._group.load(prop)
        value = self._values[prop.name]
        if type(value) is int or value is PENDING_LIST:
            # The batch missed this object (the data changed since): load it alone.
            Group.of_one(self).load(prop)
        value = self._values[prop.name]
        if type(value) is int:
            raise ObjectNotFoundError(
                f"{type(self).__name__} {self.object_id} refers through {prop.name!r} to "
                f"object {value}, which is not visible to you (or no longer in the "
                f"database, or not a {prop.type.__name__})")
        return prop.__get__(self, type(self))

    # -- comparison and display ---------------------------------------------------

    def __eq__(self, other):
        if not isinstance(other, DBObject):
            return NotImplemented
        if self.object_id is None or other.object_id is None:
            return self is other
        return self.object_id == other.object_id

    def __hash__(self):
        # Uncommitted objects hash by identity; do not keep them in sets across commit.
        return hash(self.object_id) if self.object_id is not None else id(self)

    def __repr__(self):
        if self.object_id is None:
            return f"<{type(self).__name__} (not committed)>"
        return f"<{type(self).__name__} {self.object_id}>"


def _document(cls):
    """The class docstring followed by its persistent attributes, for help()."""
    lines = [(cls.__dict__.get("__doc__") or "").rstrip(), "", "Persistent attributes",
             "---------------------"]
    for name, prop in cls._properties.items():
        flags = (f" (changed by {prop.logged_by})" if prop.logged_by
                 else " (mutable)" if prop.mutable else "")
        lines.append(f"{name} : {prop.type_name()}{flags}")
        lines.append(f"    {prop.doc}")
    return "\n".join(lines).lstrip("\n")


DBObject._properties = {n: p for n, p in vars(DBObject).items() if isinstance(p, Persistent)}
DBObject._table = schema.BASE_TABLE
DBObject._link_tables = {}
_registry["DBObject"] = DBObject
