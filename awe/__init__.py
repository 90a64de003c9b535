"""The environment users touch: configuration, the context handle (user, project,
privileges), the command line, the ``awe>`` prompt, the web application.

So far it holds the configuration (`awe.config`) and the ``awe`` command line
(`awe.cli`).
"""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("awe")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
