"""Counting the SQL statements a piece of code issues, for the batch-loading tests."""

import contextlib

import sqlalchemy as sa


@contextlib.contextmanager
def statements(db):
    """Collect the SQL statements issued on ``db`` (an executemany counts once)."""
    seen = []

    def record(_conn, _cursor, statement, *_):
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
