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


def test_project_parameters_come_from_the_parameters_file(home, monkeypatch):
    home.mkdir(parents=True)
    (home / "parameters.ini").write_text(
        "[KIDS]\nToyBias.clip = 2.5\nMasterFlat.sigma_clip = 3\n[other]\nToyBias.clip = 9.0\n")
    assert config.project_parameters("KIDS") == {"ToyBias": {"clip": 2.5},
                                                 "MasterFlat": {"sigma_clip": 3}}
    assert config.project_parameters("nobody") == {}
    import persistence
    db = awe.connect(context=persistence.Context(user="alice", project="KIDS"))
    try:
        from tests.targets.engine_models import ToyBias
        assert ToyBias.parameters_in_force().clip == 2.5
        assert ToyBias.parameters_in_force({"clip": 1.0}).clip == 1.0, "a call's pars win"
    finally:
        db.close()
        targets.set_project_parameters({})


def test_a_bad_parameters_line_names_file_section_and_key(home, monkeypatch):
    path = home / "custom.ini"
    home.mkdir(parents=True)
    path.write_text("[KIDS]\nsigma_clip = 2.5\n")
    monkeypatch.setenv("AWE_PARAMETERS", str(path))
    with pytest.raises(ValueError, match=r"custom.ini \[KIDS\] sigma_clip = 2.5: write"):
        config.project_parameters("KIDS")


def test_awe_context_is_the_current_databases_and_switches_project(home, monkeypatch):
    import persistence
    monkeypatch.setenv("AWE_PARAMETERS", str(home / "parameters.ini"))
    db = awe.connect(context=persistence.Context(user="alice", project="KIDS"))
    try:
        (home / "parameters.ini").write_text("[VIKING]\nToyBias.clip = 4.0\n")
        assert (awe.context.user, awe.context.project) == ("alice", "KIDS")
        assert awe.context.projects() == {"KIDS": "manager"}, "the embedded default's user"
        awe.context.set_privileges(4)
        awe.context.set_project("KIDS")
        with pytest.raises(PermissionError, match="not a member of project 'VIKING'"):
            awe.context.set_project("VIKING")
        from awe.environment import add_user
        add_user(db, "alice", "VIKING", "member")
        awe.context.set_project("VIKING")
        assert awe.context.privileges == 2, "privileges 4 lowered to what a member may use"
        from tests.targets.engine_models import ToyBias
        assert ToyBias.parameters_in_force().clip == 4.0, "the new project's parameters"
        with pytest.raises(PermissionError, match="take a manager of it; alice is a member"):
            awe.context.set_privileges(3)
        awe.context.set_privileges(2)
        assert db.context == persistence.Context(user="alice", project="VIKING", privileges=2)
        assert "user alice, project VIKING (member), privileges 2" in repr(awe.context)
    finally:
        db.close()
        targets.set_project_parameters({})
