"""The ``awe>`` prompt driven as a user drives it: a real ``awe`` process in a
pseudo-terminal, sent keystrokes, its screen read. Also ``awe -c`` and ``awe script.py``
as real processes."""

import re
import subprocess

import pexpect
import sqlalchemy as sa

from awe.cli import main

from .conftest import awe_command, awe_environment

TIMEOUT = 120  # seconds: the first start imports astropy, scipy and matplotlib


def start_prompt(home, cwd, **variables):
    command, *arguments = awe_command()
    child = pexpect.spawn(command, arguments, env=awe_environment(home, **variables),
                          cwd=str(cwd), encoding="utf-8", timeout=TIMEOUT,
                          dimensions=(50, 200))
    child.expect_exact("awe> ")
    return child


def run_line(child, line):
    """Type ``line`` and Enter; return what it printed before the next prompt."""
    child.sendline(line)
    child.expect_exact("awe> ")
    return child.before


def test_the_standard_prompt_greets_evaluates_completes_helps_and_plots(reduced_home,
                                                                          tmp_path):
    child = start_prompt(reduced_home, tmp_path, AWE_PROMPT="python", AWE_PROJECT="KIDS")
    greeting = child.before
    assert "user " in greeting and "project KIDS (manager), privileges 1" in greeting
    assert f"database     sqlite:///{reduced_home / 'awe.db'}" in greeting
    assert f"data server  {reduced_home / 'data'}" in greeting
    assert "dpu          serial" in greeting

    assert run_line(child, "CalibratedExposure.all().count()").split()[-1] == "4"
    assert "<context: user " in run_line(child, "context")

    # Tab completes class names, persistent attributes and query methods.
    child.send("CalibratedExpo\t")
    child.expect_exact("sure")
    child.send(".seei\t")
    child.expect_exact("ng")
    out = run_line(child, " < 2")
    assert "Query" in out or "<" in out
    run_line(child, "q = CalibratedExposure.filter == 'r'")
    child.send("q.order_\t")
    child.expect_exact("by(")
    out = run_line(child, "'seeing')[0].seeing")
    assert 0.5 < float(out.split()[-1]) < 2.0

    out = run_line(child, "help(MasterFlat)")
    for section in ("Persistent attributes", "Selectors", "Dependencies",
                    "Process parameters (MasterFlatParameters"):
        assert section in out
    assert "Rejection threshold of the sigma clipping" in out

    out = run_line(child, "p = Pars(MasterFlat, sigma=2.5); p")
    assert re.search(r"sigma\s+2\.5\s+3\.0\s+you", out), out

    out = run_line(child, "plot([1, 2, 3], [3, 1, 2], 'o'); xlabel('x'); show()")
    assert f"figure written to {tmp_path / 'awe-figure-1.png'}" in out
    assert (tmp_path / "awe-figure-1.png").read_bytes().startswith(b"\x89PNG")

    out = run_line(child, "MasterFlat.n_frame")
    assert "did you mean" in out and "Traceback" in out, "an error leaves the prompt up"
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_the_banner_never_shows_the_database_password(reduced_home, tmp_path,
                                                      postgresql_url):
    url = sa.make_url(postgresql_url).set(password="s3cret-pw").render_as_string(
        hide_password=False)
    child = start_prompt(tmp_path / "home", tmp_path, AWE_PROMPT="python",
                         AWE_DATABASE_URL=url)
    assert "postgres:***@127.0.0.1" in child.before
    assert "s3cret-pw" not in child.before
    assert run_line(child, "db.url.database").split()[-1] == repr(
        sa.make_url(postgresql_url).database)
    child.sendline("exit()")
    child.expect(pexpect.EOF)


def test_the_ipython_prompt_is_awe_and_completes_classes(reduced_home, tmp_path):
    child = start_prompt(reduced_home, tmp_path)  # IPython is a test dependency
    assert "AWE " in child.before and "dpu          serial" in child.before
    child.sendline("type(get_ipython()).__name__")
    child.expect_exact("InteractiveShellEmbed")
    child.expect_exact("awe> ")
    child.send("MasterFl\t")
    child.expect_exact("MasterFlatParameters")  # the completion menu
    child.send("\x1b")  # close the menu
    child.sendcontrol("u")
    child.sendline("40 + 2")
    child.expect_exact("42")
    child.expect_exact("awe> ")
    child.sendline("exit()")
    child.expect(pexpect.EOF)


def test_awe_dash_c_and_a_script_run_in_the_prompts_namespace(reduced_home, tmp_path):
    env = awe_environment(reduced_home)
    result = subprocess.run(
        [*awe_command(), "-c", "print(len(CalibratedExposure.filter == 'g'), dpu)"],
        env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "SerialDPU()"]

    script = tmp_path / "trend.py"
    script.write_text(
        "import sys\n"
        "frames = CalibratedExposure.filter == sys.argv[1]\n"
        "print(sys.argv[1:], [round(f.seeing, 2) for f in frames.order_by('date_obs')])\n"
        "sys.exit(3)\n")
    result = subprocess.run([*awe_command(), str(script), "r", "--verbose"], env=env,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 3, "the script's own exit code"
    words = result.stdout.split("]")[0]
    assert "'r', '--verbose'" in words

    result = subprocess.run([*awe_command(), "-c", "1 / 0"], env=env, capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stderr and "<awe -c>" in result.stderr


def test_awe_dash_c_in_process_uses_the_configured_project(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWE_PROJECT", "KIDS")
    result = runner.invoke(main, ["-c", "print(context.project, Pars.__name__)"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["KIDS", "Pars"]


def test_a_bad_setting_is_one_line_before_any_prompt(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWE_PRIVILEGES", "9")
    result = runner.invoke(main, ["-c", "print(1)"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: privileges = '9' (environment AWE_PRIVILEGES): write 1 (only you), 2 (your "
        "project), 3 (every user) or 4 (world)"]
