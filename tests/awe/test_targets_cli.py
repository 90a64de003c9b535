"""``awe plan`` and ``awe get``: targets named on the command line, on both databases."""

import datetime
import json

import pytest

import dataserver
import targets
from awe.cli import main
from tests.targets.engine_models import ToyBias, ToySensor, ingest

MODELS = ["--module", "tests.targets.engine_models"]
SELECTORS = ["chip=ccd50", "time=2024-03-17T00:00:00"]


@pytest.fixture
def environment(db, tmp_path, monkeypatch):
    """A database with a night of biases, and the environment that points awe at it."""
    files = tmp_path / "files"
    targets.set_data_client(dataserver.Client(files))
    chip = ToySensor(name="ccd50")
    chip.commit()
    for i in range(3):
        ingest(tmp_path, "bias", chip, datetime.datetime(2024, 3, 17, 0, i), 100 + i)
    (tmp_path / "home").mkdir()  # so that awe does not say it made it
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWE_DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AWE_DATA_SERVERS", str(files))
    yield chip
    targets.set_data_client(None)


def test_plan_then_get_then_plan(runner, environment):
    result = runner.invoke(main, ["plan", "ToyBias", *SELECTORS, *MODELS])
    assert result.exit_code == 0, result.output
    assert "ToyBias(chip=ccd50, time=2024-03-17T00:00:00) [to be built]" in result.stdout
    result = runner.invoke(main, ["get", "ToyBias", *SELECTORS, "--pars", "clip=2.5", *MODELS])
    assert result.exit_code == 0, result.output
    bias = ToyBias.all().first()
    assert result.stdout.strip() == f"ToyBias {bias.object_id} {bias.filename}"
    assert "[1/1] made ToyBias" in result.stderr
    assert bias.process_parameters.clip == 2.5
    result = runner.invoke(main, ["plan", "ToyBias", *SELECTORS, "--pars", "clip=2.5",
                                  "--json", *MODELS])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [node["state"] for node in plan["nodes"]] == ["up to date"]
    assert plan["nodes"][0]["object_id"] == bias.object_id


def test_selector_by_object_id(runner, environment):
    result = runner.invoke(main, ["plan", "ToyBias", f"chip={environment.object_id}",
                                  "time=2024-03-17T00:00:00", *MODELS])
    assert result.exit_code == 0, result.output


def test_selectors_may_be_given_with_sel(runner, environment):
    positional = runner.invoke(main, ["plan", "ToyBias", *SELECTORS, "--json", *MODELS])
    with_sel = runner.invoke(main, ["plan", "ToyBias", "--sel", SELECTORS[0], "--sel",
                                    SELECTORS[1], "--json", *MODELS])
    assert with_sel.exit_code == 0, with_sel.output
    assert with_sel.stdout == positional.stdout


@pytest.mark.parametrize("arguments, message", [
    (["NoSuchTarget", *SELECTORS], "no persistent class named 'NoSuchTarget'"),
    (["ToySensor", *SELECTORS], "ToySensor is not a target; targets: "),
    (["ToyBias", "chip=ccd99", "time=2024-03-17T00:00:00"], "chip='ccd99' matches 0 ToySensor"),
    (["ToyBias", "chip=ccd50", "time=yesterday"], "time='yesterday' is not an ISO 8601"),
    (["ToyBias", "chip=ccd50"], "asked for by chip, time; missing: time"),
    (["ToyBias", "ccd50"], "selector 'ccd50' is not name=value"),
])
def test_mistakes_get_one_line_saying_what_to_write(runner, environment, arguments, message):
    result = runner.invoke(main, ["plan", *arguments, *MODELS])
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_pars_are_python_literals_as_in_parameters_ini():
    from awe.cli._targets import parse_pars

    assert parse_pars(["clip=2.5", "subtract=True", "filter=r", "filter2='g'"]) == {
        "clip": 2.5, "subtract": True, "filter": "r", "filter2": "g"}
