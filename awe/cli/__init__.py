"""The ``awe`` command line; `main` is the entry point of the ``awe`` script."""

from .commands import main

__all__ = ["main"]
