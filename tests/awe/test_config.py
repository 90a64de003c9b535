"""The configuration: AWE_* variables over the Environment.cfg file over the defaults,
``awe config``, and what `awe.connect` and the DPU take from it."""

import pytest

import awe
import persistence
import targets
from awe import config
from awe.cli import main
from awe.environment import make_dpu


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty data home, and no AWE_* setting in the environment."""
    for setting in config.SETTINGS:
        monkeypatch.delenv(setting.variable, raising=False)
    monkeypatch.delenv("AWE_CONFIG", raising=False)
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    targets.set_data_client(None)
    targets.set_project_parameters({})


def write_config(home, text):
    home.mkdir(parents=True, exist_ok=True)
    (home / "Environment.cfg").write_text(text)


def test_with_nothing_configured_everything_is_embedded_in_the_home(home):
    settings = config.profile()
    assert settings["database_url"] == f"sqlite:///{home / 'awe.db'}"
    assert settings.data_servers == [str(home / "data")]
    assert settings["dpu"] == "serial" and settings["project"] == "default"
    assert settings.privileges == 1 and settings.cache_size == 10 * 1024**3
    assert settings.source("database_url") == "default"
    assert settings.source("home") == "environment AWE_HOME"
    assert not settings.file_found


def test_the_environment_overrides_the_file_which_overrides_the_defaults(home, monkeypatch):
    write_config(home, "[awe]\nproject = KIDS\nuser = alice\nprivileges = 2\n"
                       "cache_size = 2G\n")
    monkeypatch.setenv("AWE_PROJECT", "VIKING")
    settings = config.profile()
    assert settings["project"] == "VIKING"
    assert settings.source("project") == "environment AWE_PROJECT"
    assert settings["user"] == "alice"
    assert settings.source("user") == f"file {home / 'Environment.cfg'}"
    assert settings.privileges == 2 and settings.cache_size == 2 * 1024**3
    assert settings.source("dpu") == "default"


def test_awe_config_names_the_file_named_by_AWE_CONFIG(home, tmp_path, monkeypatch):
    elsewhere = tmp_path / "shared.cfg"
    elsewhere.write_text(f"[awe]\nhome = {tmp_path / 'survey'}\n"
                         "database_url = postgresql://alice:s3cret@dbhost/survey\n"
                         "dataserver_token = t0ken\n")
    monkeypatch.setenv("AWE_CONFIG", str(elsewhere))
    monkeypatch.delenv("AWE_HOME")
    settings = config.profile()
    assert settings.home == tmp_path / "survey"
    assert settings["data_servers"] == str(tmp_path / "survey" / "data"), \
        "defaults follow the home the file sets"
    text = "\n".join(settings.lines())
    assert "s3cret" not in text and "t0ken" not in text, "no secret is printed"
    assert "postgresql://alice:***@dbhost/survey" in text
    assert f"configuration file: {elsewhere}" in text


def test_awe_config_prints_every_setting_and_its_source(runner, home, monkeypatch):
    write_config(home, "[awe]\ndpu = tcp://scheduler:8786\n")
    monkeypatch.setenv("AWE_PRIVILEGES", "3")
    result = runner.invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert set(lines) == {s.key for s in config.SETTINGS}
    assert "tcp://scheduler:8786" in lines["dpu"] and "Environment.cfg" in lines["dpu"]
    assert lines["privileges"].split()[1] == "3"
    assert "(environment AWE_PRIVILEGES)" in lines["privileges"]
    assert "(default)" in lines["project"]


@pytest.mark.parametrize("text, message", [
    ("[awe]\nprojet = KIDS\n", r"unknown key 'projet'; did you mean project\?"),
    ("project = KIDS\n", r"not a valid configuration file"),
    ("[global]\nproject = KIDS\n", r"has no \[awe\] section"),
    ("[awe]\nhome = /elsewhere\n", r"sets home, but it is found through the home itself"),
])
def test_a_bad_configuration_file_is_named_with_the_remedy(runner, home, text, message):
    write_config(home, text)
    with pytest.raises(ValueError, match=message):
        config.profile()
    result = runner.invoke(main, ["config"])
    assert result.exit_code == 1
    assert "Environment.cfg" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_missing_file_named_by_AWE_CONFIG_is_an_error(home, tmp_path, monkeypatch):
    monkeypatch.setenv("AWE_CONFIG", str(tmp_path / "nowhere.cfg"))
    with pytest.raises(ValueError, match="nowhere.cfg, which does not exist"):
        config.profile()


def test_privileges_and_cache_size_are_checked_naming_where_they_were_set(home, monkeypatch):
    write_config(home, "[awe]\nprivileges = 7\ncache_size = lots\n")
    settings = config.profile()
    with pytest.raises(ValueError, match=r"privileges = '7' \(file .*Environment.cfg\)"):
        settings.privileges
    with pytest.raises(ValueError, match=r"cache_size in .*Environment.cfg='lots' is not"):
        settings.cache_size


def test_connect_works_as_the_configured_user_and_project(home):
    write_config(home, "[awe]\nuser = alice\nproject = KIDS\nprivileges = 2\n")
    (home / "parameters.ini").write_text("[KIDS]\nMasterFlat.sigma = 2.5\n")
    db = awe.connect()
    try:
        assert db.context == persistence.Context(user="alice", project="KIDS", privileges=2)
        chip = targets.Chip(name="ccd1")
        chip.commit()
        assert (chip.owner, chip.project, chip.privileges) == ("alice", "KIDS", 2)
        assert targets.MasterFlat.parameters_in_force().sigma == 2.5
    finally:
        db.close()


def test_connect_makes_the_home_and_says_so(home, capsys):
    db = awe.connect()
    db.close()
    assert (home / "awe.db").is_file()
    assert f"made the data home {home}" in capsys.readouterr().err
    awe.connect().close()
    assert "made the data home" not in capsys.readouterr().err, "said once, when made"


def test_the_dpu_setting_chooses_serial_or_dask(home, monkeypatch):
    with make_dpu() as dpu:
        assert isinstance(dpu, targets.SerialDPU)
    monkeypatch.setenv("AWE_DPU", "tcp://127.0.0.1:8786")
    with make_dpu() as dpu:
        assert isinstance(dpu, targets.DaskDPU) and dpu.address == "tcp://127.0.0.1:8786"
    with make_dpu("serial") as dpu:
        assert isinstance(dpu, targets.SerialDPU), "the command line wins"
    monkeypatch.setenv("AWE_DPU", "fast")
    with pytest.raises(ValueError, match=r"'fast' is not serial, dask or a Dask scheduler"):
        make_dpu()
