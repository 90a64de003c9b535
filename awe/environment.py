"""The user's entry point: connect to this environment's database and data servers, as
the user and project the configuration names, and the DPU it chooses."""

import contextlib
import dataclasses
import sys

import persistence
import targets
import targets.curation

from .config import data_client, profile, project_parameters

__all__ = ["acting_as", "add_user", "connect", "context_of", "make_dpu",
           "register_single_user"]


def connect(database=None, *, context=None, settings=None):
    """Connect to the database and the data servers the configuration names, and set
    the process parameters of the context's project.

    The data home is made if missing (and said so on standard error), so the embedded
    default needs no set-up.

    Parameters
    ----------
    database : `str`, optional
        A database URL to use instead of the configured one.
    context : `persistence.Context`, optional
        Who is working, in which project (by default the configured user, project and
        privileges).
    settings : `awe.config.Profile`, optional
        The configuration (by default the one in force).

    Returns
    -------
    db : `persistence.Database`

    Examples
    --------
    >>> import awe
    >>> db = awe.connect()          # the embedded SQLite database and data directory
    """
    settings = settings or profile()
    context = context or context_of(settings)  # a bad setting fails before anything is made
    if not settings.home.exists():
        settings.home.mkdir(parents=True)
        print(f"awe: made the data home {settings.home} (database, files and cache live "
              "there unless configured otherwise)", file=sys.stderr)
    db = persistence.connect(database or settings["database_url"], context=context)
    if db.dialect == "sqlite":
        register_single_user(db)
    user = (persistence.User.name == db.context.user).first()
    if user is not None and user.default_project and settings.source("project") == "default":
        db.context = dataclasses.replace(db.context, project=user.default_project)
    # Products in MyDB may be deleted (context.delete); raw data never.
    targets.set_data_client(data_client(settings, targets.curation.product_file_patterns()))
    targets.set_project_parameters(project_parameters(db.context.project, settings))
    return db


@contextlib.contextmanager
def acting_as(context, settings=None):
    """Work as ``context`` (a `persistence.Context`) inside the block, with its
    project's process parameters, in this thread or task only: how the web server
    serves each request, and runs each job, as its own user.

    Raises
    ------
    ValueError
        Raised if the project's parameters in the configuration are malformed.
    """
    settings = settings or profile()
    parameters = project_parameters(context.project, settings)
    with persistence.current_database().acting_as(context), \
            targets.using_project_parameters(parameters):
        yield context


def register_single_user(db):
    """The embedded default has one user, who manages every project they work in: so
    that every privileges level is theirs to use. A shared installation registers its
    users with ``awe admin add-user`` instead."""
    context = db.context
    if context.user is None or context.project in db.memberships():
        return
    if {user.name for user in persistence.User.all()} <= {context.user}:
        add_user(db, context.user, context.project, "manager")


def add_user(db, name, project, role, *, password=None):
    """Register user ``name`` as a ``role`` of ``project`` (both made if new; the first
    project is their default): what ``awe admin add-user`` does. On PostgreSQL the user
    also gets a database role of that name, logging in with ``password`` if given, and
    every table its row-level security (see `persistence.security`)."""
    if role not in persistence.ROLES:
        raise ValueError(f"a role is one of {', '.join(persistence.ROLES)}, not {role!r}")
    if db.dialect == "postgresql":
        import sqlalchemy as sa

        from persistence.schema import METADATA, judged_tables
        from persistence.security import add_database_user, install_policies

        try:
            with db.transaction() as conn:
                add_database_user(conn, name, password)
                existing = set(sa.inspect(conn).get_table_names())
                install_policies(conn, [t for t in METADATA.tables if t in existing],
                                 judged_tables(persistence.registered_classes()))
        except sa.exc.ProgrammingError as err:
            raise PermissionError(
                f"cannot add the database role {name!r} as {db.url.username}: "
                f"{persistence.errors.first_line(err)}. Run awe admin as the database's "
                "owner (a role that may create roles).") from err
    made = []
    if (persistence.Project.name == project).first() is None:
        made.append(persistence.Project(name=project, privileges=3))
    if (persistence.User.name == name).first() is None:
        made.append(persistence.User(name=name, default_project=project, privileges=3))
    membership = ((persistence.Membership.member == name)
                  & (persistence.Membership.project_name == project)).first()
    if membership is None:
        made.append(persistence.Membership(member=name, project_name=project, role=role,
                                           privileges=3))
    else:
        membership.role = role
        made.append(membership)
    persistence.commit_all(made)
    db.forget_memberships()


def context_of(settings):
    """The `persistence.Context` the configuration names."""
    return persistence.Context(user=settings["user"], project=settings["project"],
                               privileges=settings.privileges)


def make_dpu(choice=None, settings=None):
    """The DPU ``choice`` names (by default the configuration's ``dpu``):
    `targets.SerialDPU` for ``serial``, a `targets.DaskDPU` on a local cluster for
    ``dask`` (or ``""``, as ``--dask`` alone gives), or on the Dask scheduler at an
    address. Close it with ``contextlib.closing`` or its ``with`` block when done."""
    settings = settings or profile()
    where = "--dask" if choice is not None else f"dpu = ... ({settings.source('dpu')})"
    choice = (settings["dpu"] if choice is None else choice or "dask").strip()
    if choice.lower() == "serial":
        return targets.SerialDPU()
    if choice.lower() == "dask":
        return targets.DaskDPU()
    if ":" not in choice:
        raise ValueError(f"{where}: {choice!r} is not serial, dask or a Dask scheduler "
                         "address such as tcp://scheduler:8786")
    return targets.DaskDPU(choice)
