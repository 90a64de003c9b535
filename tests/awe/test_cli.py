"""The ``awe`` command line, through its real entry point."""

import pytest

import awe
import persistence
from awe.cli import main

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nodb"


def test_help(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert "init" in result.output


@pytest.mark.parametrize("command", sorted(main.commands))
def test_command_help(runner, command):
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert f"awe {command}" in result.output


def test_version(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert awe.__version__ in result.output


def test_init_creates_sqlite_database(runner, tmp_path, monkeypatch):
    home = tmp_path / "awe-home"
    monkeypatch.setenv("AWE_HOME", str(home))
    monkeypatch.delenv("AWE_DATABASE_URL", raising=False)
    monkeypatch.delenv("AWE_DATA_SERVERS", raising=False)
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert (home / "awe.db").is_file()
    assert str(home / "awe.db") in result.output
    assert (home / "data").is_dir(), "the default data store, beside the database"
    assert str(home / "data") in result.output
    again = runner.invoke(main, ["init"])
    assert again.exit_code == 0, again.output


def test_init_fails(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("AWE_HOME", str(tmp_path))
    monkeypatch.setenv("AWE_DATABASE_URL", UNREACHABLE)
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "nobody@127.0.0.1:1/nodb" in lines[0]
    assert "Traceback" not in result.output


def test_init_debug_fails_with_traceback(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("AWE_HOME", str(tmp_path))
    monkeypatch.setenv("AWE_DATABASE_URL", UNREACHABLE)
    result = runner.invoke(main, ["--debug", "init"])
    assert result.exit_code == 1
    assert isinstance(result.exception, persistence.PersistenceError)
