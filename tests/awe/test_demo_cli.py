"""``awe demo``: a simulated night reduced end to end on the embedded default."""

import re

import targets
from awe.cli import main


def test_demo_reduces_a_night_then_finds_it_up_to_date(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AWE_DATABASE_URL", raising=False)
    monkeypatch.delenv("AWE_DATA_SERVERS", raising=False)
    result = runner.invoke(main, ["demo", "--chips", "1"])
    assert result.exit_code == 0, result.output
    assert "4 calibrated exposures, 0 flagged" in result.stdout
    assert result.stdout.count("SIMF01") == 4
    assert "made NightReport(instrument=SIMCAM, night=2024-03-11)" in result.stderr
    assert re.search(rf"database:\s+sqlite:///{tmp_path}/home/awe.db", result.stdout)
    assert re.search(rf"files:\s+{tmp_path}/home/data", result.stdout)
    lists = re.search(r"source lists:\s+4, ([\d,]+) sources", result.stdout)
    assert lists, result.stdout
    assert int(lists.group(1).replace(",", "")) == sum(
        s.n_sources for s in targets.SourceList.all()) > 800
    assert targets.Association.all().count() == 4, "every list associated"
    objects = re.search(r"objects:\s+([\d,]+)", result.stdout)
    assert int(objects.group(1).replace(",", "")) == targets.Object.all().count()
    assert "most variable:     Object" in result.stdout
    again = runner.invoke(main, ["demo", "--chips", "1"])
    assert again.exit_code == 0, again.output
    assert "made" not in again.stderr, "everything is up to date"
    assert again.stdout == result.stdout
