"""``awe ingest`` and ``awe get`` of an imaging product, on both databases."""

import pytest
from astropy.io import fits

import targets
from awe.cli import main
from targets import MasterBias, RawBiasFrame


@pytest.fixture
def environment(db, tmp_path, monkeypatch):
    """The environment that points awe at an empty database and data store."""
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWE_DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("AWE_DATA_SERVERS", str(tmp_path / "files"))
    yield tmp_path
    targets.set_data_client(None)


def test_ingest_reports_and_get_makes_a_master_bias(runner, environment, simulated_night):
    biases = [p for p in simulated_night.raw if fits.getval(p, "IMAGETYP") == "BIAS"]
    broken = environment / "broken.fits"
    broken.write_text("not FITS")
    result = runner.invoke(main, ["ingest", *biases, str(broken)])
    assert result.exit_code == 1, "a file failed"
    assert "ingested 20 raw frames, 0 were already in, 1 files failed" in result.stdout
    assert f"{broken}: not a readable FITS file" in result.stdout
    assert len(RawBiasFrame.all()) == 20
    result = runner.invoke(main, ["ingest", *biases])
    assert result.exit_code == 0 and "0 raw frames, 20 were already in" in result.stdout
    result = runner.invoke(main, ["get", "MasterBias", "chip=ccd2", "time=2024-03-12T01:00:00"])
    assert result.exit_code == 0, result.output
    bias = MasterBias.all().first()
    assert result.stdout.strip() == f"MasterBias {bias.object_id} {bias.filename}"
    assert bias.chip.name == "ccd2" and bias.n_frames == 10
