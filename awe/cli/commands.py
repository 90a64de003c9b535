"""The ``awe`` click group and its commands.

Each command parses its options and calls one keyword-only function that does the
work; errors a user can fix become one line on stderr and exit code 1.
"""

import contextlib
import io
import json
import os
import sys

import click

import dataserver

from .. import __version__
from ..config import awe_home, data_servers, database_url

# The commands import what they need when they run: `awe dataserver serve` must not
# load the astronomy (astropy, scipy, sep: over 100 MiB) to serve files.

__all__ = ["main"]


class _AweGroup(click.Group):
    """``awe`` alone starts the prompt, and ``awe script.py ARGS`` runs a script: a first
    word that is no command but a file is the script of the hidden ``run`` command."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and (
                args[0].endswith(".py") or os.path.isfile(args[0])):
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)


@click.group(cls=_AweGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="awe")
@click.option("-c", "code", metavar="CODE",
              help="Run CODE (Python) in the prompt's namespace, then exit.")
@click.option("--debug", is_flag=True,
              help="Show the full traceback of an error instead of one line.")
@click.pass_context
def main(ctx, code, debug):
    """AWE: an Astro-WISE-style survey data system.

    Alone, awe starts the awe> prompt: Python with the product classes, context, dpu,
    Pars, lineage, plan and plotting loaded. With a script (awe script.py ARGS) or -c
    CODE it runs that in the same namespace. Otherwise it runs one of the commands
    below. The settings in force (database, data servers, user, project, DPU) come from
    $AWE_HOME/Environment.cfg and AWE_* variables: see awe config.

    \b
    Examples:
        awe
        awe -c "print(CalibratedExposure.all().count())"
        awe trend.py --chip ccd1
        awe init
    """
    ctx.obj = {"debug": debug}
    if ctx.invoked_subcommand is None:
        _session(ctx, code=code)


@main.command(hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx, script, args):
    """Run SCRIPT with ARGS in the prompt's namespace (awe SCRIPT says the same).

    \b
    Example:
        awe run trend.py --chip ccd1
    """
    _session(ctx, script=script, args=args)


def _session(ctx, *, code=None, script=None, args=()):
    """The prompt, or ``-c`` code or a script in its namespace."""
    from .. import prompt
    from ..config import profile
    from ..environment import connect, make_dpu

    with _user_errors(ctx):
        settings = profile()
        db = connect(settings=settings)
        dpu = make_dpu(settings=settings)
    with contextlib.closing(dpu):
        names = prompt.namespace(db, dpu, settings)
        if code is None and script is None:
            prompt.interact(names, prompt.banner(settings, db, dpu))
            return
        try:
            if code is not None:
                prompt.run_code(code, names)
            else:
                prompt.run_script(script, list(args), names)
        except SystemExit as done:  # sys.exit() in the user's code: as from python
            if done.code is None or isinstance(done.code, int):
                ctx.exit(done.code or 0)
            click.echo(done.code, err=True)
            ctx.exit(1)
        except Exception:
            # The user's own code: its traceback is what they need, as from python.
            import traceback

            traceback.print_exc()
            ctx.exit(1)


@main.command(name="config")
@click.pass_context
def config_command(ctx):
    """Print the settings in force and where each came from (environment variable,
    configuration file or default).

    \b
    Example:
        AWE_PROJECT=KIDS awe config
    """
    from ..config import profile

    with _user_errors(ctx):
        lines = profile().lines()
    for line in lines:
        click.echo(line)


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
        from ._init import init_database

        info = init_database(url=database_url(), home=awe_home(), data_servers=data_servers())
    click.echo(f"database:  {info['database']}")
    click.echo(f"data home: {info['home']}")
    click.echo(f"files:     {', '.join(info['data'])}")
    click.echo(f"tables:    {info['tables']}")


@main.command()
@click.option("--chips", default=2, show_default=True, type=click.IntRange(1, 16),
              help="CCDs of the simulated mosaic.")
@click.option("--size", default="1024x1024", show_default=True, metavar="NXxNY",
              help="Pixels per CCD.")
@click.option("--nights", default=1, show_default=True, type=click.IntRange(1, 30),
              help="Consecutive nights to simulate and reduce.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the nights.")
@click.option("--dask", "dask", default=None, is_flag=False, flag_value="",
              metavar="[ADDRESS]", help="Make on Dask: a local cluster, or the scheduler "
                                        "at ADDRESS (default: the configured DPU).")
@click.pass_context
def demo(ctx, chips, size, nights, seed, dask):
    """Reduce simulated nights end to end: simulate them (in $AWE_HOME/demo), ingest
    them, make their master biases and flats, pixel maps and calibrated exposures, get
    the source list of every science frame and associate them into objects; then print
    where everything is and a summary.

    Running it again makes nothing: everything is up to date.

    \b
    Example:
        awe demo --chips 4 --nights 3 --dask
    """
    with _user_errors(ctx):
        from ._demo import describe as describe_demo
        from ._demo import run_demo

        nx, ny = _parse_size(size)
        with _simulation_progress() as progress:
            def extracting(done, total):
                click.echo(f"source lists: {done}/{total}", err=True)

            result = run_demo(chips=chips, size=(nx, ny), seed=seed, nights=nights,
                              dask=dask, progress=progress, on_source_list=extracting)
    for line in describe_demo(result):
        click.echo(line)


_TARGET_ARGUMENTS = [
    click.argument("target"),
    click.argument("selectors", nargs=-1),
    click.option("--sel", "sel", multiple=True, metavar="NAME=VALUE",
                 help="A selector (repeatable), the same as a NAME=VALUE argument."),
    click.option("--pars", "pars", multiple=True, metavar="NAME=VALUE",
                 help="A process parameter for this run (repeatable), e.g. --pars clip=2.5"),
    click.option("--module", "modules", multiple=True, metavar="MODULE",
                 help="Import this module first, for targets defined outside AWE."),
]


def _target_arguments(command):
    for decorate in reversed(_TARGET_ARGUMENTS):
        command = decorate(command)
    return command


@main.command()
@_target_arguments
@click.option("--depth", type=int, help="Check this many levels of dependencies only.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def plan(ctx, target, selectors, sel, pars, modules, depth, as_json):
    """Show what getting TARGET for SELECTORS (name=value) would make, and why.

    \b
    Example:
        awe plan MasterBias chip=ccd50 time=2024-03-17T01:02:03
    """
    with _user_errors(ctx):
        from ._targets import parse_pars, plan_target

        found = plan_target(name=target, selectors=selectors + sel, depth=depth,
                            pars=parse_pars(pars), modules=modules)
    click.echo(json.dumps(found.to_json(), indent=1) if as_json else str(found))


@main.command()
@_target_arguments
@click.option("--dask", "dask", default=None, is_flag=False, flag_value="",
              metavar="[ADDRESS]", help="Make on Dask: a local cluster, or the scheduler "
                                        "at ADDRESS.")
@click.pass_context
def get(ctx, target, selectors, sel, pars, modules, dask):
    """Get TARGET for SELECTORS (name=value), making whatever is missing or outdated.

    Progress goes to standard error; the product's class, id and file to standard
    output. Without --dask, products are made on the configured DPU (awe config).

    \b
    Example:
        awe get MasterBias chip=ccd50 time=2024-03-17T01:02:03 --pars clip=2.5
    """
    with _user_errors(ctx):
        from ._targets import get_target, parse_pars

        product = get_target(name=target, selectors=selectors + sel, pars=parse_pars(pars),
                             dask=dask, modules=modules)
    click.echo(f"{type(product).__name__} {product.object_id} {product.filename}")


@main.command()
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory to write raw/, truth/ and reference/ into; made if missing.")
@click.option("--nights", default=1, show_default=True, type=click.IntRange(1, 366),
              help="Number of consecutive nights.")
@click.option("--chips", default=4, show_default=True, type=click.IntRange(1, 16),
              help="CCDs in the mosaic.")
@click.option("--size", default="1024x1024", show_default=True, metavar="NXxNY",
              help="Data pixels per CCD, e.g. 256x256 for a quick test.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed: the same options give byte-identical files.")
@click.option("--start", default="2024-03-11", show_default=True, metavar="YYYY-MM-DD",
              help="Local date of the first night's evening.")
@click.option("--filters", default="g,r", show_default=True, metavar="F,F",
              help="Filters observed (of g, r, i).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier simulation in --out.")
@click.pass_context
def simulate(ctx, out, nights, chips, size, seed, start, filters, overwrite):
    """Write raw observing nights of the simulated mosaic camera SIMCAM, with the truth.

    Per night: 10 biases, 3 darks, 7 dome flats per filter and dithered science
    exposures of three fields in each filter, as multi-extension FITS files under
    OUT/raw/<night>/;
    the true detectors, flats, sources and conditions under OUT/truth/; and the
    reference catalogue under OUT/reference/.

    \b
    Example:
        awe simulate --out sim --nights 2 --chips 4 --size 512x512 --seed 1
    """
    with _user_errors(ctx):
        from targets.simulator import simulate

        nx, ny = _parse_size(size)
        with _simulation_progress() as progress:
            summary = simulate(
                out, nights=nights, chips=chips, size=(nx, ny), seed=seed, start=start,
                overwrite=overwrite, progress=progress,
                filters=[f.strip() for f in filters.split(",") if f.strip()])
    click.echo(f"raw:       {len(summary.raw)} files in {os.path.join(summary.out, 'raw')}")
    click.echo(f"nights:    {', '.join(n.isoformat() for n in summary.nights)}")
    click.echo(f"truth:     {summary.truth}")
    click.echo(f"reference: {summary.reference}")


@contextlib.contextmanager
def _simulation_progress():
    """A progress bar on stderr, and the ``progress(done, total, path)`` callback of
    `targets.simulator.simulate` that moves it."""
    with click.progressbar(length=1, label="simulating", file=sys.stderr) as bar:
        def progress(done, total, path):
            bar.length = total
            bar.update(1)

        yield progress


def _parse_size(text):
    """``(nx, ny)`` from ``'NXxNY'`` (or one number for a square)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise ValueError(f"--size {text!r}: give it as NXxNY, e.g. 1024x1024")
    return tuple(values)


@main.command(name="ingest")
@click.argument("paths", nargs=-1, required=True, metavar="FILE...")
@click.option("--instrument", "instruments", multiple=True, metavar="FILE",
              help="An instrument file to try before the built-in ones (repeatable).")
@click.pass_context
def ingest_command(ctx, paths, instruments):
    """Ingest raw FITS files (one raw frame per chip) and reference catalogues (.ecsv).

    Each file is committed whole or not at all; a file that cannot be read is reported
    and the others go on (exit code 1 if any failed). Ingesting a file again does nothing.

    \b
    Example:
        awe ingest sim/raw/2024-03-11/*.fits sim/reference/reference.ecsv
    """
    with _user_errors(ctx):
        import targets

        from ..environment import connect

        connect()
        with click.progressbar(length=len(paths), label="ingesting", file=sys.stderr) as bar:
            report = targets.ingest(paths, instruments=instruments,
                                    progress=lambda _path: bar.update(1))
    click.echo(str(report))
    if report.failed:
        ctx.exit(1)


@main.command()
@click.argument("object_id", type=int)
@click.pass_context
def lineage(ctx, object_id):
    """Print what OBJECT_ID was made from, down to the raw data: each product with its
    dependency role, code version, process parameters and file.

    \b
    Example:
        awe lineage 812
    """
    with _user_errors(ctx):
        from ._inspect import load_object

        found = load_object(object_id).lineage()
    click.echo(str(found))


@main.command()
@click.argument("object_id", type=int)
@click.pass_context
def dependents(ctx, object_id):
    """Print every product made from OBJECT_ID, directly or not: what becomes outdated
    if it is invalidated.

    \b
    Example:
        awe dependents 812
    """
    with _user_errors(ctx):
        from targets.lineage import dependents as find_dependents

        from ._inspect import load_object

        found = find_dependents(load_object(object_id))
    for product in found:
        click.echo(f"{type(product).__name__} {product.object_id}"
                   f"{' ' + product.filename if getattr(product, 'filename', None) else ''}")
    if not found:
        click.echo(f"nothing was made from {object_id}", err=True)


@main.command()
@click.argument("object_id", type=int)
@click.option("--png", type=click.Path(dir_okay=False, writable=True),
              help="Also write a preview of its image to this PNG file (zscale).")
@click.pass_context
def show(ctx, object_id, png):
    """Print the attributes of OBJECT_ID, with what each means.

    \b
    Example:
        awe show 812 --png exposure.png
    """
    with _user_errors(ctx):
        from ._inspect import load_object, preview_png, show_lines

        obj = load_object(object_id)
        lines = show_lines(obj)
        if png:
            preview_png(obj, png)
    for line in lines:
        click.echo(line)
    if png:
        click.echo(f"preview: {png}", err=True)


@main.command()
@click.argument("expression")
@click.option("--columns", metavar="NAME,NAME",
              help="The columns, names or dotted paths separated by commas (default: "
                   "object_id and every scalar attribute).")
@click.option("--format", "fmt", default="table", show_default=True,
              type=click.Choice(["table", "csv", "votable", "fits"]),
              help="table prints an aligned table; the others write that format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="The file to write (needed for fits; others go to standard output).")
@click.pass_context
def query(ctx, expression, columns, fmt, output):
    """Print the objects EXPRESSION finds: a query on the product classes, in Python.

    \b
    Examples:
        awe query "CalibratedExposure.seeing < 1.2" --columns object_id,chip.name,seeing
        awe query "SourceList.filter == 'r'" --format votable -o lists.xml
    """
    with _user_errors(ctx):
        from ._inspect import query_table, votable_ready

        names = [c.strip() for c in (columns or "").split(",") if c.strip()]
        table = query_table(expression, names)
        if fmt == "votable":
            table = votable_ready(table)
        if fmt == "fits" and not output:
            raise ValueError("--format fits writes a file: give --output FILE")
        if fmt == "table":
            text = "\n".join(table.pformat(max_lines=-1, max_width=-1))
        else:
            astropy_format = {"csv": "ascii.csv", "votable": "votable", "fits": "fits"}[fmt]
            if output:
                table.write(output, format=astropy_format, overwrite=True)
                click.echo(f"{len(table)} rows written to {output}", err=True)
                return
            buffer = io.BytesIO() if fmt == "votable" else io.StringIO()
            table.write(buffer, format=astropy_format)
            value = buffer.getvalue()
            text = value.decode() if isinstance(value, bytes) else value
    if output:
        with open(output, "w") as file:
            file.write(text + "\n")
        click.echo(f"{len(table)} rows written to {output}", err=True)
    else:
        click.echo(text.rstrip("\n"))
    if not len(table):
        click.echo("no objects match", err=True)


@main.group(name="admin")
def admin_group():
    """Administer the installation: its users, their projects and roles.

    \b
    Example:
        awe admin add-user alice --project KIDS --role calibrator --password
    """


@admin_group.command(name="add-user")
@click.argument("name")
@click.option("--project", required=True, help="The project the user joins (made if new).")
@click.option("--role", default="member", show_default=True,
              type=click.Choice(["member", "calibrator", "manager"]),
              help="member sees the project's data; calibrator also sets validity; "
                   "manager also publishes beyond the project.")
@click.option("--password", is_flag=True,
              help="Ask for the password the user logs in with: to the web pages, and "
                   "on PostgreSQL to the database (AWE_PASSWORD gives it without asking).")
@click.pass_context
def add_user_command(ctx, name, project, role, password):
    """Register user NAME as a ROLE of PROJECT; run again to change the role.

    On PostgreSQL, NAME also becomes a database role: the user connects as themselves
    (postgresql://NAME@host/db) and the database shows them only what they may see.

    \b
    Example:
        awe admin add-user alice --project KIDS --role calibrator
    """
    secret = None
    if password:
        secret = os.environ.get("AWE_PASSWORD") or click.prompt(
            f"password for {name}", hide_input=True, confirmation_prompt=True)
    with _user_errors(ctx):
        import awe
        from awe.environment import add_user
        from awe.web.accounts import checked_password, set_password

        if secret is not None:
            checked_password(name, secret)  # before anything is made
        db = awe.connect()
        add_user(db, name, project, role, password=secret)
        if secret is not None:
            set_password(db, name, secret)
    click.echo(f"{name} is a {role} of {project}"
               + (" (web password set)" if secret is not None else ""))
    if db.dialect == "postgresql":
        url = db.url.set(username=name, password=None).render_as_string(hide_password=True)
        click.echo(f"{name} connects as: {url.replace('+psycopg2', '')}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.pass_context
def web(ctx, host, port, log_level):
    """Serve the web pages and their JSON API until interrupted: target processing
    with its job queue (the jobs run in this server, on the configured DPU), object
    pages, calibration timelines, trends and a cone search.

    Users log in with the password awe admin add-user --password gave them; without
    logging in, only world-visible (privileges 4) data is shown.

    \b
    Example:
        awe web --host 127.0.0.1 --port 8080
    """
    with _user_errors(ctx):
        from ..web import serve as serve_web

        serve_web(host, port, log_level=log_level)


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
    except Exception as err:
        if not isinstance(err, _user_error_types()) or (ctx.find_root().obj or {}).get("debug"):
            raise
        raise click.ClickException(" ".join(str(err).splitlines())) from err


def _user_error_types():
    """The errors a user can fix; those of a package only if it was imported (none of
    its errors can have been raised otherwise)."""
    found = [dataserver.DataServerError, ValueError, TypeError, OSError]
    for module, name in (("persistence", "PersistenceError"), ("targets", "TargetError")):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)
