"""The context: who is working, in which project, and who may see what.

Every new object takes its owner, project and privileges from the context of the
database it is committed to, and every query admits only the objects the context's
user may see (`visibility`):

- privileges 4 (world): everyone, also without logging in (``user=None``);
- privileges 3: every user of the installation;
- privileges 2: the members of the object's project;
- privileges 1 (MyDB): its owner only. An owner always sees their own objects.

On PostgreSQL the same rule is a row-level security policy (`persistence.security`).
"""

import dataclasses
import getpass

import sqlalchemy as sa

from .schema import BASE_TABLE

__all__ = ["PRIVILEGES", "Context", "check_privileges", "visibility"]

#: The privileges levels: who may see an object.
PRIVILEGES = {
    1: "MyDB (its owner only)",
    2: "project (the project's members)",
    3: "every user of this installation",
    4: "world (without logging in)",
}


@dataclasses.dataclass
class Context:
    """The current user, project and privileges level.

    Examples
    --------
    >>> Context(user='alice', project='KIDS', privileges=2)
    Context(user='alice', project='KIDS', privileges=2)
    """

    user: str = dataclasses.field(default_factory=getpass.getuser)
    """The user name recorded as the owner of new objects; None for someone not
    logged in, who sees world-visible objects only and may not commit."""
    project: str = "default"
    """The project new objects belong to."""
    privileges: int = 1
    """Who may see new objects, see `PRIVILEGES`."""
    everything: bool = False
    """See every object, whoever may: for the installation's own services (the web's
    job runner, which takes every user's jobs), never for a person."""

    def __post_init__(self):
        check_privileges(self.privileges)


def check_privileges(level):
    """Return ``level`` if it is one of `PRIVILEGES`; raise `ValueError` listing them."""
    if level not in PRIVILEGES:
        levels = "; ".join(f"{k} = {v}" for k, v in PRIVILEGES.items())
        raise ValueError(f"privileges must be one of {levels}; got {level!r}")
    return level


def visibility(user, projects):
    """The condition on the base table admitting what ``user`` may see, given the
    ``projects`` they are a member of."""
    c = BASE_TABLE.c
    if user is None:
        return c.privileges == 4
    conditions = [c.privileges >= 3, c.owner == user]
    if projects:  # no empty IN (): it reads as a subquery in the statement
        conditions.append(sa.and_(c.privileges == 2, c.project.in_(sorted(projects))))
    return sa.or_(*conditions)
