"""Where AWE keeps its data and which database it uses.

Both come from the environment: ``AWE_HOME`` names the data home (default ``~/.awe``)
and ``AWE_DATABASE_URL`` the database (default an SQLite file in the data home).
"""

import os
from pathlib import Path

__all__ = ["awe_home", "database_url"]


def awe_home():
    """Return the AWE data home directory.

    Returns
    -------
    home : `pathlib.Path`
        The absolute path in the environment variable ``AWE_HOME`` if it is set and not
        empty, otherwise ``~/.awe``. The directory need not exist yet.

    Examples
    --------
    >>> import os
    >>> os.environ["AWE_HOME"] = "/data/survey"
    >>> awe_home()
    PosixPath('/data/survey')
    """
    home = os.environ.get("AWE_HOME") or "~/.awe"
    return Path(home).expanduser().absolute()


def database_url():
    """Return the URL of the AWE database.

    Returns
    -------
    url : `str`
        The SQLAlchemy URL in the environment variable ``AWE_DATABASE_URL`` if it is set
        and not empty, otherwise the SQLite file ``awe.db`` in `awe_home`.

    Examples
    --------
    >>> import os
    >>> os.environ["AWE_HOME"] = "/data/survey"
    >>> database_url()
    'sqlite:////data/survey/awe.db'
    >>> os.environ["AWE_DATABASE_URL"] = "postgresql://awe@dbhost/survey"
    >>> database_url()
    'postgresql://awe@dbhost/survey'
    """
    return os.environ.get("AWE_DATABASE_URL") or f"sqlite:///{awe_home() / 'awe.db'}"
