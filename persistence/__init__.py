"""Generic persistent objects on a relational database (SQLite or PostgreSQL).

Declare a class with `persistent` attributes, `connect` to a database, make objects and
`~DBObject.commit` them, and query them with Python expressions on the class:

>>> from persistence import DBObject, persistent, connect
>>> class Chip(DBObject):
...     name = persistent('CCD name', str, '')
>>> db = connect('sqlite:///awe.db')
>>> Chip(name='ccd50').commit()
>>> [c.name for c in Chip.name.like('ccd*')]
['ccd50']

This package knows nothing of astronomy, files or processing.
"""

from .attribute import Persistent, persistent
from .bulk import delete_many, insert_links, insert_many, update_many
from .closure import reachable
from .commit import commit_all, commit_changes
from .context import PRIVILEGES, Context
from .database import Database, connect, current_database
from .dbobject import DBObject, registered_class, registered_classes
from .errors import (AttributeTypeError, CommitError, DatabaseConnectionError,
                     ImmutableObjectError, NotConnectedError, ObjectNotFoundError,
                     PersistenceError, QueryError, SchemaChangeError, UnknownAttributeError)
from .loading import IN_LIST_MAX, collector_paused
from .query import Attribute, Query, fetch_together
from .users import ROLES, Membership, Project, User

__all__ = [
    "IN_LIST_MAX",
    "PRIVILEGES",
    "ROLES",
    "Attribute",
    "AttributeTypeError",
    "CommitError",
    "Context",
    "DBObject",
    "Database",
    "Membership",
    "DatabaseConnectionError",
    "ImmutableObjectError",
    "NotConnectedError",
    "ObjectNotFoundError",
    "Persistent",
    "Project",
    "PersistenceError",
    "Query",
    "QueryError",
    "SchemaChangeError",
    "UnknownAttributeError",
    "User",
    "collector_paused",
    "commit_all",
    "commit_changes",
    "connect",
    "current_database",
    "delete_many",
    "fetch_together",
    "insert_links",
    "insert_many",
    "persistent",
    "reachable",
    "registered_class",
    "registered_classes",
    "update_many",
]
