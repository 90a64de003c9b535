"""A data home with a reduced night in it, as ``awe demo`` leaves it, for the tests that
look at products from the prompt and the command line; and how to run ``awe``."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import awe
import targets


def awe_command():
    """The installed ``awe`` script beside this Python, or ``python -m awe``."""
    script = Path(sys.executable).with_name("awe")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "awe"]


def awe_environment(home, **variables):
    """The environment of a real ``awe`` process on ``home``: no AWE_* setting of the
    caller's, no screen, no pager."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWE_")}
    env.pop("DISPLAY", None)
    env.pop("MPLBACKEND", None)
    env.update(AWE_HOME=str(home), PAGER="cat", TERM="xterm", COLUMNS="200", **variables)
    return env


@pytest.fixture(scope="session")
def reduced_home(tmp_path_factory):
    """A data home where ``awe demo --chips 1`` reduced a simulated night (made once;
    copy it before changing it)."""
    home = tmp_path_factory.mktemp("reduced") / "home"
    result = subprocess.run([*awe_command(), "demo", "--chips", "1"],
                            env=awe_environment(home), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return home


@pytest.fixture
def home_copy(reduced_home, tmp_path):
    """A copy of `reduced_home` a test may change."""
    copy = tmp_path / "home"
    shutil.copytree(reduced_home, copy)
    return copy


def connected(home, monkeypatch):
    """Point awe at ``home`` and connect; yield the database, then close it (a body for
    fixtures: ``yield from connected(home, monkeypatch)``)."""
    monkeypatch.setenv("AWE_HOME", str(home))
    db = awe.connect()
    yield db
    db.close()
    targets.set_data_client(None)
