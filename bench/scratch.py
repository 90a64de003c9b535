"""A PostgreSQL database of its own for one benchmark run, created and dropped."""

import contextlib
import uuid

import sqlalchemy as sa

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
"""The machine's PostgreSQL, as the benchmarks use it by default."""


@contextlib.contextmanager
def scratch_postgresql(server_url=SERVER):
    """Create a database on the server of ``server_url``, yield its URL, drop it."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"awe_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
