"""The configuration in force: where AWE keeps its data, which database, data servers and
DPU it uses, and who is working in which project.

Each setting comes from the first of: its ``AWE_*`` environment variable, the ``[awe]``
section of the configuration file, its default. The file is the one ``AWE_CONFIG`` names,
otherwise ``Environment.cfg`` in the data home (``$AWE_HOME``, by default ``~/.awe``)::

    [awe]
    database_url = postgresql://alice@dbhost/survey
    data_servers = http://ds1:8008 http://ds2:8008
    project = KIDS
    privileges = 2
    dpu = tcp://scheduler:8786

With nothing configured everything is embedded: an SQLite database and a data directory
in the data home. ``awe config`` prints the settings in force and where each came from.

=====================  ========================  ==========================================
file key               environment variable      meaning (default)
=====================  ========================  ==========================================
``home``               ``AWE_HOME``              the data home (``~/.awe``); the file can
                                                 set it only when ``AWE_CONFIG`` names it
``database_url``       ``AWE_DATABASE_URL``      the database (the SQLite file ``awe.db``
                                                 in the home)
``data_servers``       ``AWE_DATA_SERVERS``      where files live, tried in order,
                                                 separated by spaces or commas: data
                                                 server URLs or directories (the
                                                 directory ``data`` in the home)
``dataserver_token``   ``AWE_DATASERVER_TOKEN``  the bearer token data servers want for
                                                 writes (none)
``user``               ``AWE_USER``              the owner of new objects (the login name)
``project``            ``AWE_PROJECT``           the project new objects belong to
                                                 (``default``)
``privileges``         ``AWE_PRIVILEGES``        who may see new objects, 1 to 4 (1: only
                                                 their owner); `persistence.PRIVILEGES`
``dpu``                ``AWE_DPU``               where products are made: ``serial`` (in
                                                 this process, the default), ``dask`` (a
                                                 local Dask cluster) or a Dask scheduler
                                                 address
``cache_dir``          ``AWE_CACHE_DIR``         the cache of files fetched from data
                                                 servers (``cache`` in the home)
``cache_size``         ``AWE_CACHE_SIZE``        the cache's size limit, bytes or with a
                                                 unit, e.g. ``20G`` (``10G``)
``parameters``         ``AWE_PARAMETERS``        each project's process parameters (the
                                                 file ``parameters.ini`` in the home); see
                                                 `project_parameters`
=====================  ========================  ==========================================
"""

import ast
import configparser
import dataclasses
import difflib
import getpass
import os
import re
from pathlib import Path

import dataserver

__all__ = ["Profile", "awe_home", "data_client", "data_servers", "database_url", "profile",
           "project_parameters"]

CONFIG_FILE = "Environment.cfg"
SECTION = "awe"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its key in the file, its environment variable, its default."""

    key: str
    default: object  # a value, or a function of the profile worked out so far
    secret: bool = False

    @property
    def variable(self):
        return "AWE_" + self.key.upper()


SETTINGS = (
    Setting("home", "~/.awe"),
    Setting("database_url", lambda p: f"sqlite:///{Path(p['home']) / 'awe.db'}"),
    Setting("data_servers", lambda p: str(Path(p["home"]) / "data")),
    Setting("dataserver_token", "", secret=True),
    Setting("user", lambda p: getpass.getuser()),
    Setting("project", "default"),
    Setting("privileges", "1"),
    Setting("dpu", "serial"),
    Setting("cache_dir", lambda p: str(Path(p["home"]) / "cache")),
    Setting("cache_size", "10G"),
    Setting("parameters", lambda p: str(Path(p["home"]) / "parameters.ini")),
)


class Profile:
    """The settings in force, each as text with where it came from.

    ``profile["project"]`` is a value; `source` says where it was set and `lines` is
    what ``awe config`` prints.
    """

    def __init__(self, values, sources, file, file_found):
        self._values, self._sources = values, sources
        self.file, self.file_found = file, file_found

    def __getitem__(self, key):
        return self._values[key]

    def source(self, key):
        """``'default'``, ``'environment AWE_…'`` or ``'file <path>'``."""
        return self._sources[key]

    def shown(self, key):
        """The value as it may be shown: secrets starred, database passwords hidden."""
        value = self._values[key]
        if key == "database_url":
            return _hide_password(value)
        if any(s.key == key and s.secret for s in SETTINGS):
            return "****" if value else "(none)"
        return value

    def lines(self):
        """The profile as ``awe config`` prints it."""
        lines = [f"configuration file: {self.file}"
                 + ("" if self.file_found else " (not present: nothing set there)")]
        width = max(len(s.key) for s in SETTINGS)
        shown = {s.key: str(self.shown(s.key)) for s in SETTINGS}
        value_width = max(map(len, shown.values()))
        lines += [f"{key:<{width}}  {value:<{value_width}}  ({self.source(key)})"
                  for key, value in shown.items()]
        return lines

    # -- typed values --------------------------------------------------------------

    @property
    def home(self):
        return Path(self["home"]).expanduser().absolute()

    @property
    def data_servers(self):
        return [s for s in re.split(r"[\s,]+", self["data_servers"]) if s]

    @property
    def privileges(self):
        text = self["privileges"]
        if text.strip() not in ("1", "2", "3", "4"):
            raise ValueError(f"privileges = {text!r} ({self.source('privileges')}): write 1 "
                             "(only you), 2 (your project), 3 (every user) or 4 (world)")
        return int(text)

    @property
    def cache_size(self):
        return _bytes(self["cache_size"], self._named("cache_size"))

    def _named(self, key):
        """How a user finds where ``key`` was set: the variable or the file's key."""
        source = self.source(key)
        return (f"AWE_{key.upper()}" if source == "default" or source.startswith("environment")
                else f"{key} in {self.file}")


def profile():
    """Return the `Profile` in force: environment variables, then the configuration
    file, then the defaults.

    Raises
    ------
    ValueError
        Raised if the configuration file cannot be read or has an unknown key; the
        message names the file and the key.
    """
    explicit = os.environ.get("AWE_CONFIG")
    home = Path(os.environ.get("AWE_HOME") or "~/.awe").expanduser().absolute()
    file = Path(explicit).expanduser().absolute() if explicit else home / CONFIG_FILE
    from_file = _read_file(file)
    if "home" in from_file and not explicit:
        raise ValueError(f"{file} sets home, but it is found through the home itself; "
                         "set AWE_HOME, or name the file with AWE_CONFIG")
    values, sources = {}, {}
    for setting in SETTINGS:
        if os.environ.get(setting.variable):
            values[setting.key] = os.environ[setting.variable]
            sources[setting.key] = f"environment {setting.variable}"
        elif setting.key in from_file:
            values[setting.key] = from_file[setting.key]
            sources[setting.key] = f"file {file}"
        else:
            default = setting.default
            values[setting.key] = default(values) if callable(default) else default
            sources[setting.key] = "default"
        if setting.key == "home":
            values["home"] = str(Path(values["home"]).expanduser().absolute())
    return Profile(values, sources, file, file.is_file())


def _read_file(path):
    """The ``[awe]`` section of the configuration file at ``path`` (empty if absent)."""
    if not path.is_file():
        if os.environ.get("AWE_CONFIG"):
            raise ValueError(f"AWE_CONFIG names {path}, which does not exist; create it or "
                             "unset AWE_CONFIG")
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error as err:
        raise ValueError(f"{path} is not a valid configuration file: "
                         f"{' '.join(str(err).split())}") from None
    if not parser.has_section(SECTION):
        raise ValueError(f"{path} has no [{SECTION}] section; put the settings under a "
                         f"line [{SECTION}]")
    known = [s.key for s in SETTINGS]
    for key in parser[SECTION]:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
            raise ValueError(f"{path} [{SECTION}] has an unknown key {key!r}; {hint}")
    return {key: value.strip() for key, value in parser[SECTION].items()}


def _hide_password(url):
    """``url`` as `persistence.Database.display_url` shows it: SQLAlchemy's rendering
    with the password starred (imported here only: ``awe dataserver serve`` reads the
    configuration without loading the database layer)."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(not a database URL; see the file or variable it came from)"


def awe_home():
    """Return the AWE data home directory (the setting ``home``; need not exist yet).

    Examples
    --------
    >>> import os
    >>> os.environ["AWE_HOME"] = "/data/survey"
    >>> awe_home()
    PosixPath('/data/survey')
    """
    return profile().home


def database_url():
    """Return the URL of the AWE database (the setting ``database_url``).

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
    return profile()["database_url"]


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
    return profile().data_servers


def data_client(settings=None, deletable=()):
    """Return a `dataserver.Client` for the data servers and cache of ``settings``
    (the `profile` in force by default); in directories, it may delete files whose
    names match the patterns ``deletable``."""
    settings = settings or profile()
    return dataserver.Client(settings.data_servers, cache_dir=settings["cache_dir"],
                             cache_size=settings.cache_size,
                             token=settings["dataserver_token"] or None,
                             deletable=deletable)


def _bytes(text, name="AWE_CACHE_SIZE"):
    """``'20G'`` → 21474836480: a size in bytes, with an optional K, M, G or T unit."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"{name}={text!r} is not a size; write e.g. 20G or 500M")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " KMGT".index(unit.upper() or " "))


def project_parameters(project, settings=None):
    """Return the process parameters the configuration sets for ``project``.

    They are in the INI file of the setting ``parameters`` (default ``parameters.ini``
    in the data home), in a section named after the project, one
    ``Target.parameter = value`` per line, the value a Python literal. A missing file or
    section sets nothing.

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
    path = Path((settings or profile())["parameters"]).expanduser()
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
