"""The database handle: one engine, one context, and the schema kept in step.

`connect` opens a database (SQLite or PostgreSQL), creates the tables of every imported
persistent class and makes it the current database that classes and queries use.
"""

import contextlib
import contextvars
import dataclasses
import fcntl
import hashlib
import threading
from pathlib import Path

import sqlalchemy as sa

from . import schema
from .context import Context, visibility
from .errors import DatabaseConnectionError, NotConnectedError, first_line

__all__ = ["Database", "connect", "current_database"]

_current = None

_acting = contextvars.ContextVar("persistence_acting", default=None)
"""``(database, context)`` while `Database.acting_as` is in force in this thread or task."""


def connect(url, *, context=None, echo=False):
    """Open the database at ``url`` and make it the current one.

    Parameters
    ----------
    url : `str`
        An SQLAlchemy URL: ``'sqlite:///awe.db'`` or ``'postgresql://user@host/name'``.
    context : `Context`, optional
        The user, project and privileges for new objects; by default the login name,
        project ``'default'`` and privileges 1.
    echo : `bool`, optional
        Log every SQL statement (SQLAlchemy's ``echo``).

    Returns
    -------
    db : `Database`

    Raises
    ------
    DatabaseConnectionError
        Raised if the database cannot be reached; the message names the URL.
    SchemaChangeError
        Raised if an imported class changed in a way that would lose stored data.

    Examples
    --------
    >>> db = connect('sqlite:///awe.db')
    >>> db.engine          # attach event listeners here
    Engine(sqlite:///awe.db)
    """
    global _current
    db = Database(url, context=context, echo=echo)
    _current = db
    return db


def current_database():
    """Return the current `Database`, the one `connect` opened last.

    Raises
    ------
    NotConnectedError
        Raised if `connect` was not called yet.
    """
    if _current is None:
        raise NotConnectedError(
            "no database is connected; call persistence.connect(url) first, e.g. "
            "persistence.connect('sqlite:///awe.db')")
    return _current


class Database:
    """A connected database: its engine, its context, and which classes it has tables for.

    Parameters
    ----------
    url : `str`
        An SQLAlchemy database URL.
    context : `Context`, optional
        Owner, project and privileges given to new objects.
    echo : `bool`, optional
        Log every SQL statement.
    """

    def __init__(self, url, *, context=None, echo=False):
        try:
            self.url = sa.make_url(url)
        except sa.exc.ArgumentError as err:
            raise DatabaseConnectionError(
                f"{url!r} is not a database URL; write e.g. 'sqlite:///awe.db' or "
                "'postgresql://user@host:5432/dbname'") from err
        self.display_url = self.url.render_as_string(hide_password=True)
        """The URL as given, with its password hidden, for messages and banners."""
        if self.url.drivername == "postgresql":
            # SQLAlchemy 2.1 defaults to psycopg 3; we ship the psycopg2 wheel.
            self.url = self.url.set(drivername="postgresql+psycopg2")
        self._context = context or Context()
        self.engine = self._create_engine(echo)
        """The SQLAlchemy `~sqlalchemy.engine.Engine`; attach event listeners to it."""
        self._synced = set()
        self._synced_version = None
        self._memberships = {}
        self._visible = {}
        self.row_level_security = False
        """Whether PostgreSQL filters this connection's rows (a user's own role)."""
        self._lock = threading.Lock()
        self._reading = threading.local()
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as err:
            self.engine.dispose()
            raise DatabaseConnectionError(
                f"cannot connect to the database {self.display_url}: "
                f"{first_line(err)}. Check that the server is running and reachable, "
                "and that the user, password and database name in the URL are right."
            ) from err
        self.ensure_tables()
        if self.dialect == "postgresql":
            self._adopt_database_role()
        self.visible()

    @property
    def context(self):
        """The `Context` new objects take their owner, project and privileges from,
        and whose user decides what queries see: the one `acting_as` put in force in
        this thread or task, else the database's own."""
        acting = _acting.get()
        if acting is not None and acting[0] is self:
            return acting[1]
        return self._context

    @contextlib.contextmanager
    def acting_as(self, context):
        """Work as ``context`` (a `Context`) inside the block, in this thread or asyncio
        task only (and the threads it hands work to with `contextvars`): a server
        answers many users at once on one database.

        Examples
        --------
        >>> with db.acting_as(Context(user='alice', project='KIDS', privileges=2)):
        ...     flats = list(MasterFlat.all())      # what alice may see
        """
        token = _acting.set((self, context))
        try:
            self.visible()  # read the user's memberships now, not inside a query
            yield context
        finally:
            _acting.reset(token)

    @context.setter
    def context(self, context):
        self._context = context
        self.visible()  # read the user's memberships now, not inside the next query

    def _adopt_database_role(self):
        """A user connected as their own PostgreSQL role is that user: the database's
        row-level security sees them so, and so must the context."""
        with self.engine.connect() as conn:
            role, exempt = conn.execute(sa.text(
                "SELECT current_user, rolsuper OR rolbypassrls OR current_user = ("
                "SELECT tableowner FROM pg_tables WHERE tablename = 'dbobject' "
                "AND schemaname = current_schema()) FROM pg_roles "
                "WHERE rolname = current_user")).one()
        self.row_level_security = not exempt
        if not exempt and self.context.user != role:
            self.context = dataclasses.replace(self.context, user=role)

    @property
    def dialect(self):
        """``'sqlite'`` or ``'postgresql'``."""
        return self.engine.dialect.name

    def _create_engine(self, echo):
        try:
            return self._create_engine_for_backend(echo)
        except (ImportError, sa.exc.NoSuchModuleError) as err:
            raise DatabaseConnectionError(
                f"cannot open {self.display_url}: the database driver is missing "
                f"({err}); install it, e.g. pip install psycopg2-binary") from err

    def _create_engine_for_backend(self, echo):
        if self.url.get_backend_name() == "sqlite":
            engine = sa.create_engine(self.url, echo=echo,
                                      connect_args={"timeout": 60})
            sa.event.listen(engine, "connect", _configure_sqlite)
            return engine
        connect_args = {}
        if self.url.get_backend_name() == "postgresql":
            # JIT compiling pays only for long analytic scans; the polymorphic joins of
            # ~40 tables, each with its row-level security policy, look costly to the
            # planner and took seconds to compile for milliseconds of work.
            connect_args = {"connect_timeout": 10, "options": "-c jit=off"}
        return sa.create_engine(self.url, echo=echo, connect_args=connect_args)

    def ensure_tables(self):
        """Create or extend the tables of every persistent class defined since last time."""
        from .dbobject import registered_classes, registry_version

        if self._synced_version == registry_version():
            return
        with self._lock:
            version = registry_version()
            todo = [c for c in registered_classes() if c not in self._synced]
            schema.sync_schema(self.engine, todo)
            self._synced.update(todo)
            self._synced_version = version

    def memberships(self, user=None):
        """The projects ``user`` (by default the context's) is a member of, with their
        role: ``{'KIDS': 'calibrator'}``. Read once per user and kept; see
        `forget_memberships`."""
        user = self.context.user if user is None else user
        if user is None:
            return {}
        found = self._memberships.get(user)
        if found is None:
            from .users import Membership

            table = Membership._table
            rows = self.execute(sa.select(table.c.project_name, table.c.role)
                                .where(table.c.member == user))
            found = self._memberships[user] = dict(rows)
        return found

    def forget_memberships(self):
        """Read memberships afresh: after they changed (``awe admin add-user``)."""
        self._memberships.clear()
        self._visible.clear()

    def visible(self):
        """The condition every query adds: the objects the context's user may see
        (`persistence.context.visibility`)."""
        if self.context.everything:
            return sa.true()
        user = self.context.user
        clause = self._visible.get(user)
        if clause is None:
            clause = self._visible[user] = visibility(user, self.memberships(user))
        return clause

    @contextlib.contextmanager
    def reading(self):
        """Run this thread's queries inside on one connection, in one transaction.

        A plan asks a couple of dozen questions: taking a connection from the pool and
        rolling it back for each costs more than some of the questions. On PostgreSQL
        the questions also share one repeatable-read snapshot, so a plan sees one state
        of a database others are writing to.
        """
        if getattr(self._reading, "connection", None) is not None:
            yield
            return
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            self._reading.connection = conn
            try:
                yield
            finally:
                self._reading.connection = None

    @contextlib.contextmanager
    def transaction(self):
        """A connection in a transaction, committed at the end of the block and rolled
        back if it raises: for writing with `persistence.insert_many` and friends."""
        self.ensure_tables()
        with self.engine.begin() as conn:
            yield conn

    def execute(self, statement):
        """Run ``statement`` and return all its rows (see `reading`)."""
        self.ensure_tables()
        conn = getattr(self._reading, "connection", None)
        if conn is not None:
            return conn.execute(statement).all()
        with self.engine.connect() as conn:
            return conn.execute(statement).all()

    def allocate_ids(self, conn, count):
        """Reserve ``count`` new object ids inside the transaction of ``conn``."""
        if count == 0:
            return []
        if self.dialect == "postgresql":
            rows = conn.execute(sa.text(
                f"SELECT nextval('{schema.SEQUENCE_NAME}') FROM generate_series(1, :n)"),
                {"n": count})
            return [r[0] for r in rows]
        seq = schema.SQLITE_SEQUENCE_TABLE
        stop = conn.execute(
            seq.update().where(seq.c.name == "object_id")
            .values(next_id=seq.c.next_id + count).returning(seq.c.next_id)).scalar_one()
        return list(range(stop - count, stop))

    @contextlib.contextmanager
    def named_lock(self, name):
        """Hold an exclusive lock called ``name`` across processes, e.g. while making
        one product, so that others asking for it wait and then find it.

        PostgreSQL: a session advisory lock on a connection of its own. SQLite: an
        ``flock`` on a file beside the database (a thread lock for ``:memory:``).
        Both are released if the holder dies.
        """
        key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(),
                             "big", signed=True)
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    conn.commit()
            return
        path = self.url.database
        if not path or path == ":memory:":
            with _memory_locks.setdefault(key, threading.Lock()):
                yield
            return
        directory = Path(path).absolute().with_name(Path(path).name + ".locks")
        directory.mkdir(exist_ok=True)
        with open(directory / f"{key & 0xFFFFFFFFFFFFFFFF:016x}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self):
        """Release the connections; the database stays current until another connects."""
        self.engine.dispose()

    def __repr__(self):
        return f"Database({self.display_url!r}, {self.context})"


_memory_locks = {}
"""Named locks of in-memory SQLite databases, which only this process can see."""


def _configure_sqlite(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA case_sensitive_like = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()

