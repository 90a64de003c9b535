"""The work behind ``awe init``: create the data home and the database tables."""

import sqlalchemy as sa

import dataserver
import persistence
import targets  # noqa: F401  (imported for its persistent classes, so they get tables)

__all__ = ["init_database"]


def init_database(*, url, home, data_servers=()):
    """Create the data home, the tables of every persistent class, and the local data
    stores.

    Running it again is safe: existing tables and their rows are kept, and tables or
    columns that new classes need are added.

    Parameters
    ----------
    url : `str`
        The database URL, e.g. ``'sqlite:////data/survey/awe.db'`` or
        ``'postgresql://awe@dbhost/survey'``.
    home : `pathlib.Path`
        The data home directory; it is made, with its parents, if missing.
    data_servers : sequence of `str`
        Where files live; the directories among them are made (URLs are left alone).

    Returns
    -------
    info : `dict`
        ``'database'``: the database URL without its password (`str`);
        ``'home'``: the data home (`pathlib.Path`);
        ``'tables'``: how many tables the database now has (`int`);
        ``'data'``: the data servers (`list` of `str`).

    Raises
    ------
    OSError
        Raised if the data home cannot be made; the message names it.
    persistence.PersistenceError
        Raised if the database cannot be reached or its tables cannot be made.

    Examples
    --------
    >>> from pathlib import Path
    >>> init_database(url='sqlite:////data/survey/awe.db', home=Path('/data/survey'))
    {'database': 'sqlite:////data/survey/awe.db', 'home': PosixPath('/data/survey'), 'tables': 3, 'data': []}
    """
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the data home {home}: {err.strerror or err}; "
                      "set AWE_HOME to a directory you can write") from err
    for store in data_servers:
        if not str(store).startswith(("http://", "https://")):
            dataserver.Storage(store)
    db = persistence.connect(url)
    try:
        tables = sa.inspect(db.engine).get_table_names()
    finally:
        db.close()
    return {"database": db.display_url, "home": home, "tables": len(tables),
            "data": list(data_servers)}
