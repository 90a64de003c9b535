"""The user's entry point: connect to this environment's database and data servers, as
the user and project the configuration names, and the DPU it chooses."""

import sys

import persistence
import targets

from .config import data_client, profile, project_parameters

__all__ = ["connect", "context_of", "make_dpu"]


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
    targets.set_data_client(data_client(settings))
    targets.set_project_parameters(project_parameters(db.context.project, settings))
    return db


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
