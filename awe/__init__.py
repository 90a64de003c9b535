"""The environment users touch: configuration, the context handle (user, project,
privileges), the command line, the ``awe>`` prompt, the web application.

It holds `connect` (the database and data servers of this environment, as its user and
project), `context` (who is working, and what they do to products), the configuration (`awe.config`), the ``awe>`` prompt (`awe.prompt`), `Pars`
(`awe.pars`), SAMP broadcasting (`awe.samp`) and the ``awe`` command line (`awe.cli`).
"""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__", "connect", "context"]

try:
    __version__ = version("awe")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def __getattr__(name):
    # awe.connect loads the astronomy; `awe dataserver serve` imports awe without it.
    if name == "connect":
        from .environment import connect

        return connect
    if name == "context":
        from .context_handle import context

        return context
    raise AttributeError(f"module 'awe' has no attribute {name!r}")
