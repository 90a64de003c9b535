"""``awe demo``: a simulated night reduced end to end on the embedded default."""

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
    assert f"database: sqlite:///{tmp_path}/home/awe.db" in result.stdout
    again = runner.invoke(main, ["demo", "--chips", "1"])
    assert again.exit_code == 0, again.output
    assert "made" not in again.stderr, "everything is up to date"
    assert again.stdout == result.stdout
