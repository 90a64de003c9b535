"""The user's entry point: connect to this environment's database and data servers."""

import persistence
import targets

from .config import awe_home, data_client, database_url, project_parameters

__all__ = ["connect"]


def connect(database=None, *, context=None):
    """Connect to the database and the data servers the configuration names, and set
    the process parameters of the context's project.

    The data home is made if missing, so the embedded default needs no set-up.

    Parameters
    ----------
    database : `str`, optional
        A database URL to use instead of ``$AWE_DATABASE_URL``.
    context : `persistence.Context`, optional
        Who is working, in which project.

    Returns
    -------
    db : `persistence.Database`

    Examples
    --------
    >>> import awe
    >>> db = awe.connect()          # the embedded SQLite database and data directory
    """
    awe_home().mkdir(parents=True, exist_ok=True)
    db = persistence.connect(database or database_url(), context=context)
    targets.set_data_client(data_client())
    targets.set_project_parameters(project_parameters(db.context.project))
    return db
