"""Shared fixtures: the command-line runner and a fresh database on every backend.

Database tests take the `db` fixture and so run twice, on SQLite and on PostgreSQL.
The PostgreSQL database is ``$AWE_TEST_POSTGRESQL`` if set, otherwise one this session
creates on ``postgresql://postgres@127.0.0.1:5432`` and drops at the end. Without a
server the PostgreSQL tests are skipped with the reason, unless ``$CI`` is set: then
they fail.
"""

import contextlib
import os
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import persistence
from persistence.errors import first_line
from targets.simulator import simulate

POSTGRESQL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
"""Where the tests create their PostgreSQL database when ``AWE_TEST_POSTGRESQL`` is unset."""


def _autocommit_engine(url, **kwargs):
    """Return an AUTOCOMMIT engine for ``url``, with the psycopg2 driver for PostgreSQL."""
    url = sa.make_url(url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", **kwargs)


@pytest.fixture(scope="session", autouse=True)
def _no_personal_configuration(tmp_path_factory):
    """Keep the developer's own AWE settings (``~/.awe``, ``AWE_*``) out of the tests:
    each test starts from an empty data home of the session's, as on a new machine."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AWE_") and name != "AWE_TEST_POSTGRESQL":
                patch.delenv(name)
        patch.setenv("AWE_HOME", str(tmp_path_factory.mktemp("awe-home")))
        yield


@pytest.fixture
def runner():
    """A `click.testing.CliRunner` to invoke ``awe`` commands in-process."""
    return CliRunner()


@pytest.fixture(scope="session")
def postgresql_url():
    """The URL of a PostgreSQL database the tests may empty and fill."""
    url = os.environ.get("AWE_TEST_POSTGRESQL")
    if url:
        yield url  # CI created it and drops it
        return
    server = _autocommit_engine(POSTGRESQL_SERVER, connect_args={"connect_timeout": 3})
    name = f"awe_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    reason = None
    try:
        with server.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.SQLAlchemyError as err:
        server.dispose()
        reason = f"PostgreSQL not reachable at {POSTGRESQL_SERVER}: {first_line(err)}"
    if reason and os.environ.get("CI"):
        pytest.fail(
            f"{reason}. CI needs PostgreSQL: start a server on 127.0.0.1:5432 that "
            "trusts user postgres (on Debian: pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start), or set AWE_TEST_POSTGRESQL to a "
            "database URL", pytrace=False)
    if reason:
        pytest.skip(f"{reason}; set AWE_TEST_POSTGRESQL to a database URL to run these tests")
    try:
        yield sa.make_url(POSTGRESQL_SERVER).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture(scope="session")
def _postgresql_admin(postgresql_url):
    """One AUTOCOMMIT engine on the test database, to empty it between tests."""
    engine = _autocommit_engine(postgresql_url)
    yield engine
    engine.dispose()


@contextlib.contextmanager
def empty_database(request, backend, directory):
    """Connect to an empty database on ``backend`` (``"sqlite"``: a file in
    ``directory``; ``"postgresql"``: the tests' database, emptied) and close it after.
    ``request`` is the asking fixture's, of any scope."""
    if backend == "sqlite":
        url = f"sqlite:///{directory}/awe.db"
    else:
        url = request.getfixturevalue("postgresql_url")
        with request.getfixturevalue("_postgresql_admin").connect() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    database = persistence.connect(url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A connected, empty `persistence.Database`, on SQLite and on PostgreSQL."""
    with empty_database(request, request.param, tmp_path) as database:
        yield database


NIGHT = dict(nights=1, chips=2, size=(1024, 1024), seed=11, fields=1, dithers=2,
             star_density=40.0)
"""A small simulated night: 2 chips of 1024 x 1024, 10 biases, 3 darks, 7 flats in g and
r, 4 exposures of a field rich enough in stars (40 per square arcminute) for astrometry
and photometry."""


@pytest.fixture(scope="session")
def simulated_night(tmp_path_factory):
    """The raw files, truth and reference catalogue of `NIGHT` (made once)."""
    return simulate(tmp_path_factory.mktemp("night"), **NIGHT)
