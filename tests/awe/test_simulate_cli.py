"""``awe simulate`` through the real entry point."""

import os

from astropy.io import fits

from awe.cli import main


def test_simulate_writes_files_and_reports_them(runner, tmp_path):
    out = tmp_path / "sim"
    result = runner.invoke(main, ["simulate", "--out", str(out), "--chips", "2",
                                  "--size", "64x96", "--seed", "5", "--filters", "r"])
    assert result.exit_code == 0, result.output
    raw = sorted((out / "raw" / "2024-03-11").glob("SIMCAM.*.fits"))
    assert len(raw) == 10 + 3 + 7 + 3 * 3  # biases, darks, flats, fields x dithers
    assert f"raw:       {len(raw)} files in {out / 'raw'}" in result.output
    assert f"truth:     {out / 'truth'}" in result.output
    assert f"reference: {out / 'reference' / 'reference.ecsv'}" in result.output
    assert "nights:    2024-03-11" in result.output
    with fits.open(raw[-1]) as hdul:
        assert [h.name for h in hdul[1:]] == ["ccd1", "ccd2"]
        assert hdul["ccd1"].data.shape == (96, 64 + 32)
    assert os.path.isfile(out / "truth" / "exposures.ecsv")


def test_simulate_bad_size_fails(runner, tmp_path):
    result = runner.invoke(main, ["simulate", "--out", str(tmp_path / "sim"), "--size", "big"])
    assert result.exit_code == 1
    assert "--size 'big': give it as NXxNY" in result.output
    assert not (tmp_path / "sim").exists()


def test_simulate_refuses_to_overwrite(runner, tmp_path):
    args = ["simulate", "--out", str(tmp_path), "--chips", "1", "--size", "64x64",
            "--filters", "g"]
    assert runner.invoke(main, args).exit_code == 0
    again = runner.invoke(main, args)
    assert again.exit_code == 1
    assert "already holds a simulation" in again.output
    assert "--overwrite" in again.output
    assert runner.invoke(main, args + ["--overwrite"]).exit_code == 0
