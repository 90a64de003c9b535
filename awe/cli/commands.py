"""The ``awe`` click group and its commands.

Each command parses its options and calls one keyword-only function that does the
work; errors a user can fix become one line on stderr and exit code 1.
"""

import contextlib

import click

import persistence

from .. import __version__
from ..config import awe_home, database_url
from ._init import init_database

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="awe")
@click.option("--debug", is_flag=True,
              help="Show the full traceback of an error instead of one line.")
@click.pass_context
def main(ctx, debug):
    """AWE: an Astro-WISE-style survey data system.

    The database is $AWE_DATABASE_URL, by default an SQLite file in the data home
    $AWE_HOME (by default ~/.awe).

    \b
    Example:
        awe init
    """
    ctx.obj = {"debug": debug}


@main.command()
@click.pass_context
def init(ctx):
    """Create the data home and the database tables.

    Running it again is safe: existing tables and data are kept.

    \b
    Example:
        AWE_DATABASE_URL=postgresql://awe@dbhost/survey awe init
    """
    with _user_errors(ctx):
        info = init_database(url=database_url(), home=awe_home())
    click.echo(f"database:  {info['database']}")
    click.echo(f"data home: {info['home']}")
    click.echo(f"tables:    {info['tables']}")


@contextlib.contextmanager
def _user_errors(ctx):
    """Turn persistence and file errors into one clear line, unless ``--debug``."""
    try:
        yield
    except (persistence.PersistenceError, OSError) as err:
        if (ctx.find_root().obj or {}).get("debug"):
            raise
        raise click.ClickException(" ".join(str(err).splitlines())) from err
