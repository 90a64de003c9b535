"""Where AWE keeps its data, which database and which data servers it uses.

All come from the environment:

=========================  ==============================================================
``AWE_HOME``               the data home (default ``~/.awe``)
``AWE_DATABASE_URL``       the database (default the SQLite file ``awe.db`` in the home)
``AWE_DATA_SERVERS``       where files live, tried in order, separated by spaces or
                           commas: data server URLs or directories (default the
                           directory ``data`` in the home, beside the embedded database)
``AWE_DATASERVER_TOKEN``   the bearer token the data servers want for writes
``AWE_CACHE_DIR``          the cache of files retrieved from data servers (default
                           ``cache`` in the home)
``AWE_CACHE_SIZE``         the cache's size limit: bytes, or with a unit, ``20G``
                           (default 10G)
``AWE_PARAMETERS``         the file of each project's process parameters (default
                           ``parameters.ini`` in the home); see `project_parameters`
=========================  ==============================================================
"""

import ast
import configparser
import os
import re
from pathlib import Path

import dataserver

__all__ = ["awe_home", "data_client", "data_servers", "database_url", "project_parameters"]


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


def data_servers():
    """Return where files live: data server URLs or directories, in the order tried.

    Examples
    --------
    >>> os.environ["AWE_HOME"] = "/data/survey"
    >>> data_servers()
    ['/data/survey/data']
    >>> os.environ["AWE_DATA_SERVERS"] = "http://ds1:8008, http://ds2:8008"
    >>> data_servers()
    ['http://ds1:8008', 'http://ds2:8008']
    """
    value = os.environ.get("AWE_DATA_SERVERS", "")
    return [s for s in re.split(r"[\s,]+", value) if s] or [str(awe_home() / "data")]


def data_client():
    """Return a `dataserver.Client` for this environment's data servers and cache."""
    size = os.environ.get("AWE_CACHE_SIZE") or "10G"
    cache_dir = os.environ.get("AWE_CACHE_DIR") or awe_home() / "cache"
    return dataserver.Client(data_servers(), cache_dir=cache_dir, cache_size=_bytes(size),
                             token=os.environ.get("AWE_DATASERVER_TOKEN") or None)


def _bytes(text):
    """``'20G'`` → 21474836480: a size in bytes, with an optional K, M, G or T unit."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"AWE_CACHE_SIZE={text!r} is not a size; write e.g. 20G or 500M")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " KMGT".index(unit.upper() or " "))


def project_parameters(project):
    """Return the process parameters the configuration sets for ``project``.

    They are in the INI file ``$AWE_PARAMETERS`` (default ``parameters.ini`` in the
    data home), in a section named after the project, one ``Target.parameter = value``
    per line, the value a Python literal. A missing file or section sets nothing.

    Returns
    -------
    parameters : `dict`
        ``{target class name: {parameter: value}}``.

    Raises
    ------
    ValueError
        Raised if a line is not ``Target.parameter = <Python literal>``; the message
        names the file, section and key.

    Examples
    --------
    With ``parameters.ini`` holding::

        [KIDS]
        MasterFlat.sigma_clip = 2.5

    >>> project_parameters("KIDS")
    {'MasterFlat': {'sigma_clip': 2.5}}
    """
    path = Path(os.environ.get("AWE_PARAMETERS") or awe_home() / "parameters.ini")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # class and parameter names are case-sensitive
    try:
        parser.read(path)
    except configparser.Error as err:
        raise ValueError(f"{path} is not a valid parameters file: {err}") from None
    if not parser.has_section(project):
        return {}
    parameters = {}
    for key, text in parser.items(project):
        target, dot, name = key.partition(".")
        try:
            if not (target and dot and name):
                raise ValueError("the key is not Target.parameter")
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"{path} [{project}] {key} = {text}: write "
                             f"'Target.parameter = <Python literal>' ({err})") from None
        parameters.setdefault(target, {})[name] = value
    return parameters
