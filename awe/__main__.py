"""``python -m awe`` is the ``awe`` command."""

from .cli import main

main(prog_name="awe")
