"""awe.connect and the data-server configuration."""

import pytest

import awe
import dataserver
import targets
from awe import config


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in ("AWE_DATABASE_URL", "AWE_DATA_SERVERS", "AWE_CACHE_DIR", "AWE_CACHE_SIZE",
                 "AWE_DATASERVER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    targets.set_data_client(None)


def test_default_data_store_is_a_directory_beside_the_embedded_database(home):
    assert config.data_servers() == [str(home / "data")]
    db = awe.connect()
    try:
        assert db.display_url == f"sqlite:///{home / 'awe.db'}"
        client = targets.data_client()
        assert isinstance(client.stores[0], dataserver.Storage)
        assert client.stores[0].root == home / "data"
    finally:
        db.close()


def test_data_servers_from_the_environment(home, monkeypatch):
    monkeypatch.setenv("AWE_DATA_SERVERS", "http://ds1:8008, http://ds2:8008  /mnt/files")
    monkeypatch.setenv("AWE_CACHE_SIZE", "2G")
    monkeypatch.setenv("AWE_DATASERVER_TOKEN", "s3cret")
    client = config.data_client()
    assert [getattr(s, "url", None) or str(s.root) for s in client.stores] == [
        "http://ds1:8008", "http://ds2:8008", "/mnt/files"]
    assert client.stores[0].token == "s3cret"
    assert client.cache.max_bytes == 2 * 1024**3
    assert client.cache.storage.root == home / "cache"


@pytest.mark.parametrize("text, expected", [
    ("1024", 1024), ("500M", 500 * 1024**2), ("1.5G", int(1.5 * 1024**3)), ("2GiB", 2 * 1024**3),
    ("1t", 1024**4)])
def test_cache_size_units(text, expected):
    assert config._bytes(text) == expected


def test_cache_size_that_is_not_a_size_names_the_variable():
    with pytest.raises(ValueError, match="AWE_CACHE_SIZE='lots'"):
        config._bytes("lots")
