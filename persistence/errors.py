"""The errors of the persistence layer.

Every error inherits from `PersistenceError` and from the builtin it resembles, so
callers may catch either (``except LookupError`` finds a missing object). Messages
name the class, attribute, object or database at fault and say what to do next.
"""

__all__ = [
    "AttributeTypeError",
    "CommitError",
    "DatabaseConnectionError",
    "ImmutableObjectError",
    "NotConnectedError",
    "ObjectNotFoundError",
    "PersistenceError",
    "QueryError",
    "SchemaChangeError",
    "UnknownAttributeError",
]


class PersistenceError(Exception):
    """Base class of every error raised by `persistence`."""


class UnknownAttributeError(PersistenceError, AttributeError):
    """Raised if a persistent class has no persistent attribute of the given name."""


class AttributeTypeError(PersistenceError, TypeError):
    """Raised if a value does not match the declared type of a persistent attribute."""


class ImmutableObjectError(PersistenceError, AttributeError):
    """Raised if a committed object's immutable attribute is assigned."""


class QueryError(PersistenceError, ValueError):
    """Raised if a query is malformed (unrelated classes, unsupported comparison)."""


class ObjectNotFoundError(PersistenceError, LookupError):
    """Raised if no object of the requested class has the requested object id."""


class NotConnectedError(PersistenceError, RuntimeError):
    """Raised if the database is used before `persistence.connect` was called."""


class DatabaseConnectionError(PersistenceError, ConnectionError):
    """Raised if the database cannot be reached."""


class SchemaChangeError(PersistenceError, RuntimeError):
    """Raised if a class change would lose data already in the database."""


class CommitError(PersistenceError, RuntimeError):
    """Raised if a commit failed; nothing of it was written."""


def first_line(err):
    """The first line of a driver error's text, for one-line messages."""
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__
