"""The ``awe`` click group and its commands.

Each command parses its options and calls one keyword-only function that does the
work; errors a user can fix become one line on stderr and exit code 1.
"""

import contextlib
import os

import click

import dataserver
import persistence

from .. import __version__
from ..config import awe_home, data_servers, database_url
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
    """Create the data home, the database tables and the local data store.

    Running it again is safe: existing tables and data are kept.

    \b
    Example:
        AWE_DATABASE_URL=postgresql://awe@dbhost/survey awe init
    """
    with _user_errors(ctx):
        info = init_database(url=database_url(), home=awe_home(), data_servers=data_servers())
    click.echo(f"database:  {info['database']}")
    click.echo(f"data home: {info['home']}")
    click.echo(f"files:     {', '.join(info['data'])}")
    click.echo(f"tables:    {info['tables']}")


@main.group(name="dataserver")
def dataserver_group():
    """Run a data server: files by global filename over HTTP.

    \b
    Example:
        awe dataserver serve --root /data/files --port 8008
    """


@dataserver_group.command()
@click.option("--root", required=True, type=click.Path(file_okay=False),
              help="Directory holding the files; made if missing.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8008, show_default=True, type=int, help="Port to listen on.")
@click.option("--token-file", type=click.File("r"),
              help="File holding the bearer token that writes and deletes need "
                   "(default: $AWE_DATASERVER_TOKEN; without a token the server is read-only).")
@click.option("--protect-reads", is_flag=True, help="Make reads need the token too.")
@click.option("--deletable", multiple=True, metavar="PATTERN",
              help="Shell pattern of names that may be deleted, e.g. 'Sandbox-alice-*' "
                   "(repeatable). By default nothing may be.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.pass_context
def serve(ctx, root, host, port, token_file, protect_reads, deletable, log_level):
    """Serve the files under --root over HTTP until interrupted.

    \b
    Example:
        AWE_DATASERVER_TOKEN=s3cret awe dataserver serve --root /data/files --port 8008
    """
    token = (token_file.read().strip() if token_file
             else os.environ.get("AWE_DATASERVER_TOKEN")) or None
    with _user_errors(ctx):
        dataserver.serve(root, host=host, port=port, token=token,
                         protect_reads=protect_reads, deletable=deletable,
                         log_level=log_level)


@contextlib.contextmanager
def _user_errors(ctx):
    """Turn persistence and file errors into one clear line, unless ``--debug``."""
    try:
        yield
    except (persistence.PersistenceError, dataserver.DataServerError, OSError) as err:
        if (ctx.find_root().obj or {}).get("debug"):
            raise
        raise click.ClickException(" ".join(str(err).splitlines())) from err
