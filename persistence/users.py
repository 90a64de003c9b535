"""The users of an installation, its projects, and who belongs to which, with what role.

They are persistent objects like any other, visible to every user (privileges 3), so
that ``User.name == 'alice'`` works at the prompt. On PostgreSQL each user is also a
database role of the same name (see `persistence.security`), whose rows the database
itself filters by the rules of `persistence.context`.
"""

from .attribute import persistent
from .dbobject import DBObject

__all__ = ["ROLES", "Membership", "Project", "User"]

#: The roles of a member of a project, each allowed what the ones before it are.
ROLES = {
    "member": "sees the project's data (privileges 2)",
    "calibrator": "also sets the validity and validity windows of the project's products",
    "manager": "also publishes the project's products to every user (3) or the world (4)",
}


class Project(DBObject):
    """A project: a survey team whose data (privileges 2) only its members see."""

    name = persistent("Project name, e.g. 'KIDS'", str, "")
    description = persistent("What the project is", str, "")


class User(DBObject):
    """A user of the installation; on PostgreSQL also a database role of this name."""

    name = persistent("Login name (and PostgreSQL role)", str, "")
    default_project = persistent("Project a session starts in", str, "")


class Membership(DBObject):
    """That a user belongs to a project, with a role of `ROLES`."""

    INDEXES = (("member", "project_name"),)

    member = persistent("The user's name", str, "")
    project_name = persistent("The project's name", str, "")
    role = persistent("member, calibrator or manager (see persistence.ROLES)", str, "member",
                      mutable=True)


def role_at_least(role, wanted):
    """Whether ``role`` is allowed what ``wanted`` is (`ROLES` are ordered)."""
    order = list(ROLES)
    return role in ROLES and order.index(role) >= order.index(wanted)
