"""The worked examples run as a newcomer would run them."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_trend_script_reports_its_frames():
    script = pathlib.Path(__file__).parent.parent / "examples" / "trend_script.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300, check=True)
    assert result.stdout.startswith("100 frames on ccd50..ccd59")
    assert "flat.imstat.stdev" in result.stdout
