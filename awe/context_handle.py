"""``context``: who is working, in which project and at which privileges, and what they
do to products (judge, publish, delete). ``awe.context`` in code, ``context`` at the
prompt; it acts on the current database (the one `awe.connect` opened last)."""

import dataclasses

import persistence
from persistence import PRIVILEGES
from persistence.context import check_privileges
from persistence.users import role_at_least

__all__ = ["ContextHandle", "context", "switched"]


def switched(db, context, *, project=None, privileges=None):
    """``context`` (a `persistence.Context`) in another ``project`` and at other
    ``privileges``, if its user may work there: the one check behind the prompt's
    `ContextHandle.set_project` and `~ContextHandle.set_privileges` and the web's
    context switch.

    Raises
    ------
    PermissionError
        Raised if the user is not a member of ``project``, or may not give new
        products ``privileges`` in it (above 1 takes a member, above 2 a manager).
    ValueError
        Raised if ``privileges`` is not a level of `persistence.PRIVILEGES`.
    """
    memberships = db.memberships(context.user)
    if project is not None and project not in memberships:
        raise PermissionError(
            f"{context.user} is not a member of project {project!r} (member of: "
            f"{', '.join(memberships) or 'none'}); the installation's administrator "
            f"adds members with: awe admin add-user {context.user} --project {project}")
    project = context.project if project is None else project
    level = context.privileges if privileges is None else check_privileges(privileges)
    needed = {2: "member", 3: "manager", 4: "manager"}.get(level)
    role = memberships.get(project)
    if needed and not role_at_least(role, needed):
        if privileges is None:  # a new project where the old level is not allowed
            level = 2 if role_at_least(role, "member") else 1
        else:
            raise PermissionError(
                f"privileges {level} ({PRIVILEGES[level]}) in project {project} take a "
                f"{needed} of it; {context.user} is "
                f"{'a ' + role if role else 'not a member'}")
    return dataclasses.replace(context, project=project, privileges=level)


class ContextHandle:
    """The current user, project and privileges, and the operations that change
    products' validity and visibility (`targets.curation` tells who may do what).

    Examples
    --------
    >>> context.set_project('KIDS')
    >>> context.set_privileges(2)          # new products: visible to KIDS's members
    >>> bias.impact()                      # what invalidating it would outdate
    >>> context.set_valid(bias, 0, comment='light leak in the raw biases')
    >>> context.publish(coadd, privileges=3)
    """

    @property
    def _db(self):
        return persistence.current_database()

    @property
    def user(self):
        return self._db.context.user

    @property
    def project(self):
        return self._db.context.project

    @property
    def privileges(self):
        return self._db.context.privileges

    def projects(self):
        """The projects the user is a member of, with their role: ``{'KIDS': 'calibrator'}``."""
        return dict(self._db.memberships())

    def set_project(self, name):
        """Work in project ``name``: new products belong to it. The user must be a
        member."""
        self._db.context = switched(self._db, self._db.context, project=name)
        import targets

        from .config import profile, project_parameters

        targets.set_project_parameters(project_parameters(name, profile()))

    def set_privileges(self, level):
        """Give new products privileges ``level``: 1 MyDB, 2 the project, 3 every user,
        4 the world. Above 1 takes membership of the project, above 2 its manager."""
        self._db.context = switched(self._db, self._db.context, privileges=level)

    # -- what people do to products -----------------------------------------------

    def set_valid(self, obj, value, *, comment=""):
        """Judge ``obj``: 0 invalid, 1 valid, 2 proposed for promotion (see
        `targets.curation.set_valid`)."""
        from targets.curation import set_valid

        set_valid(obj, value, comment=comment)

    def set_validity_window(self, obj, start, end, *, comment=""):
        """Set the validity window of calibration ``obj`` (see
        `targets.curation.set_validity_window`)."""
        from targets.curation import set_validity_window

        set_validity_window(obj, start, end, comment=comment)

    def publish(self, obj, privileges, *, comment=""):
        """Raise ``obj`` and its less visible inputs to ``privileges`` (see
        `targets.curation.publish`)."""
        from targets.curation import publish

        return publish(obj, privileges, comment=comment)

    def delete(self, obj, *, cascade=False):
        """Delete ``obj`` from MyDB, rows and file (see `targets.curation.delete`)."""
        from targets.curation import delete

        return delete(obj, cascade=cascade)

    def __repr__(self):
        try:
            context = self._db.context
        except persistence.NotConnectedError:
            return "<context: not connected; call awe.connect()>"
        role = self._db.memberships().get(context.project)
        return (f"<context: user {context.user}, project {context.project} "
                f"({role or 'not a member'}), privileges {context.privileges} "
                f"({PRIVILEGES[context.privileges]})>")


context = ContextHandle()
"""The handle on the current database's context."""
