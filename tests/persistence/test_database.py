"""Connecting: the current database, its engine, and clear errors when it fails."""

import pytest
import sqlalchemy as sa

import persistence
from persistence import database


def test_engine_is_exposed_for_event_listeners(db):
    seen = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    from tests.persistence.models import Ccd

    len(Ccd.all())
    assert any("count" in statement.lower() for statement in seen)


def test_connect_makes_the_database_current(db):
    assert persistence.current_database() is db
    assert db.dialect in ("sqlite", "postgresql")


def test_not_connected_fails(monkeypatch):
    monkeypatch.setattr(database, "_current", None)
    with pytest.raises(persistence.NotConnectedError, match=r"call persistence.connect\(url\)"):
        persistence.current_database()


def test_unreachable_database_names_url_without_password():
    url = "postgresql://alice:s3cret@127.0.0.1:1/survey"
    with pytest.raises(persistence.DatabaseConnectionError) as info:
        persistence.connect(url)
    message = str(info.value)
    assert "postgresql://alice:***@127.0.0.1:1/survey" in message
    assert "s3cret" not in message
    assert "Check that the server is running" in message
    assert isinstance(info.value, ConnectionError)


def test_unopenable_sqlite_file_names_the_url(tmp_path):
    url = f"sqlite:///{tmp_path}/no/such/dir/awe.db"
    with pytest.raises(persistence.DatabaseConnectionError, match=f"{tmp_path}/no/such/dir"):
        persistence.connect(url)


def test_malformed_url_fails():
    with pytest.raises(persistence.DatabaseConnectionError, match="is not a database URL"):
        persistence.connect("not a url")


def test_missing_driver_is_named():
    with pytest.raises(persistence.DatabaseConnectionError, match="driver is missing"):
        persistence.connect("mysql+nosuchdriver://u@127.0.0.1/x")


def test_display_url_keeps_what_the_user_wrote(db):
    assert "***" not in db.display_url or db.url.password
    assert db.display_url.split(":")[0] in ("sqlite", "postgresql")


def test_reading_asks_every_question_on_one_connection(db):
    from tests.persistence.models import Ccd

    persistence.commit_all([Ccd(name="ccd50")])
    checkouts = []
    sa.event.listen(db.engine, "checkout", lambda *args: checkouts.append(args))
    with db.reading():
        assert [c.name for c in Ccd.all()] == ["ccd50"]
        with db.reading():  # nested: the same connection
            assert len(Ccd.name == "ccd50") == 1
        persistence.commit_all([Ccd(name="ccd51")])  # on a connection of its own
        seen_inside = sorted(c.name for c in Ccd.all())
    assert len(checkouts) == 2, "one for the reads, one for the commit"
    if db.dialect == "postgresql":
        assert seen_inside == ["ccd50"], "one repeatable-read snapshot"
    assert sorted(c.name for c in Ccd.all()) == ["ccd50", "ccd51"]


def test_acting_as_sets_the_context_for_this_thread_only(db):
    import threading

    from tests.persistence.models import Ccd as Chip

    db.context = persistence.Context(user="owner", project="default", privileges=1)
    Chip(name="owners").commit()
    alice = persistence.Context(user="alice", project="KIDS", privileges=1)
    seen = {}

    def other_thread():
        seen["context"] = db.context
        seen["chips"] = [c.name for c in Chip.all()]

    with db.acting_as(alice):
        assert db.context == alice
        assert list(Chip.all()) == [], "alice does not see the owner's MyDB"
        Chip(name="alices").commit()
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert [c.owner for c in Chip.all()] == ["alice"]
    assert seen == {"context": db.context, "chips": ["owners"]}
    assert [c.name for c in Chip.all()] == ["owners"]
    with db.acting_as(persistence.Context(user="anyone", everything=True)):
        assert sorted(c.name for c in Chip.all()) == ["alices", "owners"]
