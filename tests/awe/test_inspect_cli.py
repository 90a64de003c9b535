"""``awe query``, ``awe show``, ``awe lineage`` and ``awe dependents`` on a reduced
night: in-process through click's runner, and as real processes."""

import subprocess

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import targets
from awe.cli import main

from .conftest import awe_command, awe_environment, connected


@pytest.fixture
def reduced(reduced_home, monkeypatch):
    """The reduced night's database, connected, with awe pointed at it."""
    yield from connected(reduced_home, monkeypatch)


def test_query_prints_a_table_of_the_columns_asked_for(runner, reduced):
    result = runner.invoke(main, ["query", "CalibratedExposure.filter == 'r'", "--columns",
                                  "object_id, chip.name, filter, seeing"])
    assert result.exit_code == 0, result.output
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["object_id", "chip.name", "filter", "seeing"]
    expected = {e.object_id: e for e in targets.CalibratedExposure.filter == "r"}
    assert len(rows) == len(expected) == 2
    for row in rows:
        object_id, chip, band, seeing = row.split()
        assert chip == "ccd1" and band == "r"
        assert float(seeing) == pytest.approx(expected[int(object_id)].seeing, rel=1e-9)


@pytest.mark.parametrize("fmt, suffix", [("csv", ".csv"), ("votable", ".xml"),
                                          ("fits", ".fits")])
def test_query_writes_csv_votable_and_fits(runner, reduced, tmp_path, fmt, suffix):
    path = tmp_path / f"exposures{suffix}"
    result = runner.invoke(main, ["query", "CalibratedExposure.seeing < 5", "--columns",
                                  "object_id,seeing,zeropoint", "--format", fmt, "-o",
                                  str(path)])
    assert result.exit_code == 0, result.output
    table = Table.read(path, format={"csv": "ascii.csv"}.get(fmt))
    truth = {e.object_id: e for e in targets.CalibratedExposure.all()}
    assert sorted(table["object_id"]) == sorted(truth)
    for row in table:
        assert row["seeing"] == pytest.approx(truth[row["object_id"]].seeing, rel=1e-12)


def test_query_csv_and_votable_go_to_standard_output(runner, reduced):
    result = runner.invoke(main, ["query", "MasterBias.all()", "--columns",
                                  "object_id,n_frames", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "object_id,n_frames"
    assert result.stdout.splitlines()[1].endswith(",10")
    result = runner.invoke(main, ["query", "MasterBias.all()", "--format", "votable"])
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("<?xml")


@pytest.mark.parametrize("arguments, message", [
    (["query", "Nothing.x == 1"], "name 'Nothing' is not defined"),
    (["query", "1 + 1"], "is a int, not a query"),
    (["query", "MasterBias.all()", "--format", "fits"], "give --output FILE"),
    (["query", "MasterBias.all()", "--columns", "n_framez"], "n_framez"),
    (["show", "999999"], "no object has id 999999"),
    (["lineage", "999999"], "no object has id 999999"),
])
def test_mistakes_are_one_line_with_exit_code_1(runner, reduced, arguments, message):
    result = runner.invoke(main, arguments)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_show_prints_attributes_and_writes_a_zscale_preview(runner, reduced, tmp_path):
    exposure = (targets.CalibratedExposure.filter == "g").first()
    png = tmp_path / "preview.png"
    result = runner.invoke(main, ["show", str(exposure.object_id), "--png", str(png)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"CalibratedExposure {exposure.object_id}"
    seeing = next(line for line in lines if line.split()[0] == "seeing")
    assert float(seeing.split()[1]) == exposure.seeing
    assert "# Seeing: median FWHM of stars [arcsec]" in seeing
    flat = next(line for line in lines if line.split()[0] == "flat")
    assert f"MasterFlat {exposure.flat.object_id}" in flat
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    assert np.std(pixels[..., :3]) > 0.05, "a picture, not a blank"


def test_show_png_of_an_object_without_an_image_says_so(runner, reduced, tmp_path):
    chip = targets.Chip.all().first()
    result = runner.invoke(main, ["show", str(chip.object_id), "--png",
                                  str(tmp_path / "x.png")])
    assert result.exit_code == 1
    assert f"Chip {chip.object_id} has no file to preview" in result.output


def test_lineage_and_dependents_as_real_processes(reduced, reduced_home):
    exposure = targets.CalibratedExposure.all().first()
    env = awe_environment(reduced_home)
    result = subprocess.run([*awe_command(), "lineage", str(exposure.object_id)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"CalibratedExposure {exposure.object_id} [code version")
    assert f"  bias: MasterBias {exposure.bias.object_id}" in result.stdout
    raw_biases = [line for line in lines if "raw_biases: RawBiasFrame" in line]
    assert len(raw_biases) == exposure.bias.n_frames

    result = subprocess.run([*awe_command(), "dependents", str(exposure.bias.object_id)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    made = {tuple(line.split()[:2]) for line in result.stdout.splitlines()}
    assert {("CalibratedExposure", str(e.object_id))
            for e in targets.CalibratedExposure.all()} <= made
    assert ("MasterBias", str(exposure.bias.object_id)) not in made

    result = subprocess.run([*awe_command(), "show", "999999"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: no object has id 999999; find ids with awe query, e.g. awe query "
        "'CalibratedExposure.all()'"]
    assert "Traceback" not in result.stderr


def test_the_fits_preview_is_the_products_file(reduced):
    exposure = targets.CalibratedExposure.all().first()
    with fits.open(exposure.retrieve()) as hdus:
        assert any(h.is_image and h.data is not None for h in hdus)
