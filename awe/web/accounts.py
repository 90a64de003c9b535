"""Web passwords: an Argon2id hash per user, set by ``awe admin add-user --password``.

The hash is a persistent object of its own, owned by its user in their MyDB
(privileges 1), so nobody else sees it at the prompt or, on PostgreSQL, in ``psql``.
"""

import argon2

import persistence
from persistence import DBObject, persistent

__all__ = ["MIN_LENGTH", "Credential", "check_password", "checked_password", "set_password"]

MIN_LENGTH = 8
"""The shortest password accepted [characters]."""

_hasher = argon2.PasswordHasher()
"""Argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile)."""

_NOBODY = argon2.PasswordHasher().hash("a password nobody has")
"""Checked against when a user has no credential, so that a wrong name takes as long
to refuse as a wrong password."""


class Credential(DBObject):
    """The hash of a user's web password."""

    user = persistent("The user's name", str, "")
    password_hash = persistent("Argon2id hash of the password (PHC string)", str, "",
                               mutable=True)


def checked_password(name, password):
    """Return ``password`` if it may be ``name``'s.

    Raises
    ------
    ValueError
        Raised if it is shorter than `MIN_LENGTH`.
    """
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password of {name} must have at least {MIN_LENGTH} "
                         "characters; nothing was changed")
    return password


def set_password(db, name, password):
    """Set the web password of user ``name`` (replacing an earlier one).

    Raises
    ------
    ValueError
        Raised if the password is too short (`checked_password`).
    """
    checked_password(name, password)
    with db.acting_as(persistence.Context(user=name, project="default", privileges=1)):
        found = (Credential.user == name).first()
        if found is None:
            found = Credential(user=name, owner=name, privileges=1)
        found.password_hash = _hasher.hash(password)
        found.commit()


def check_password(db, name, password):
    """Whether ``password`` is the web password of user ``name``."""
    with db.acting_as(persistence.Context(user=name, project="default", privileges=1)):
        found = (Credential.user == name).first()
    try:
        return _hasher.verify(found.password_hash if found else _NOBODY, password) \
            and found is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
