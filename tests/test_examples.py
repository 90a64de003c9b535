"""The worked examples run as a newcomer runs them. The five trend scripts run on two
nights of two chips reduced by ``awe demo``; each must write a real plot: a PNG that is
not blank, whose axes hold one point per product the script is about."""

import pathlib
import runpy
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import awe  # noqa: E402
import targets  # noqa: E402
from targets import CalibratedExposure, MasterBias, Object  # noqa: E402
from tests.awe.conftest import awe_command, awe_environment  # noqa: E402

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def _lightcurve_points():
    star = (Object.n_detections >= 4).order_by("eta", descending=True).first()
    return star.n_detections


PLOTS = {
    # script: the number of points it must draw, from the database
    "flat_noise": lambda: ((CalibratedExposure.chip.name == "ccd1")
                           & (CalibratedExposure.filter == "r")).count(),
    "bias_trend": lambda: 2 * MasterBias.all().count(),  # level and read noise
    "seeing_airmass": lambda: CalibratedExposure.all().count(),
    "zeropoint_trend": lambda: CalibratedExposure.all().count(),
    "lightcurve": _lightcurve_points,
}


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """A data home with two nights of two chips reduced, their source lists and
    objects, as ``awe demo --nights 2 --chips 2`` leaves it."""
    home = tmp_path_factory.mktemp("examples") / "home"
    result = subprocess.run([*awe_command(), "demo", "--nights", "2", "--chips", "2"],
                            env=awe_environment(home), capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stderr
    return home


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_example_writes_a_real_plot(name, nights, tmp_path, monkeypatch):
    script = EXAMPLES / f"{name}.py"
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path,
                            env=awe_environment(nights), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{name}.png: ")
    pixels = matplotlib.image.imread(tmp_path / f"{name}.png")
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 400
    assert np.std(pixels[..., :3]) > 0.02, "not a blank image"

    # What it drew: the same script again in this process, its axes read back.
    monkeypatch.setenv("AWE_HOME", str(nights))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script)])
    plt.close("all")
    runpy.run_path(str(script), run_name="__main__")
    try:
        axes = plt.gcf().axes
        drawn = sum(len(line.get_xdata()) for ax in axes for line in ax.lines
                    if line.get_marker() not in (None, "None", ""))
        assert drawn == PLOTS[name]() > 0
        assert all(ax.get_ylabel() for ax in axes), "every axis says what it shows"
    finally:
        plt.close("all")
        targets.set_data_client(None)


def test_the_seeing_plot_holds_the_exposures_values(nights, tmp_path, monkeypatch):
    monkeypatch.setenv("AWE_HOME", str(nights))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["seeing_airmass.py"])
    plt.close("all")
    runpy.run_path(str(EXAMPLES / "seeing_airmass.py"), run_name="__main__")
    drawn = sorted((x, y) for line in plt.gca().lines
                   for x, y in zip(line.get_xdata(), line.get_ydata()))
    plt.close("all")
    awe.connect()
    assert drawn == sorted((e.airmass, e.seeing) for e in CalibratedExposure.all())


def test_trend_script_reports_its_frames():
    result = subprocess.run([sys.executable, str(EXAMPLES / "trend_script.py")],
                            capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.startswith("100 frames on ccd50..ccd59")
    assert "flat.imstat.stdev" in result.stdout
