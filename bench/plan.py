"""Planning an up-to-date coadd request: AWE's plan() and get() against `snakemake -n`.

The request: a coadd of 100 science frames, one per night and chip (25 nights × 4
chips), each calibrated with a master bias, a master flat and hot and cold pixel maps
of its night and chip: 501 targets, all made beforehand. AWE is timed and its SQL
statements counted on SQLite and PostgreSQL; the same graph as a Snakemake workflow
over the same number of existing files is asked for a dry run (``snakemake -n``), which
must also find nothing to do. ``get()`` is timed in a running session (as at the
``awe>`` prompt), and also as a new process that starts, connects and asks, which is
what ``snakemake -n`` always pays. Needs ``pip install ".[bench]"`` (Snakemake).

Run it with ``python bench/plan.py [--repeat 5]``.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from scratch import scratch_postgresql  # bench/scratch.py, while bench/ is on the path

# bench/dataserver.py would hide the dataserver package: import the packages instead.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
import dataserver  # noqa: E402
import persistence  # noqa: E402
import targets  # noqa: E402
from persistence import DBObject, persistent  # noqa: E402
from targets import CalibrationTarget, DataObject, ProcessTarget, dependency  # noqa: E402

NIGHTS, CHIPS = 25, 4
START = datetime.datetime(2024, 3, 1, 0, 0)


class BenchChip(DBObject):
    name = persistent("CCD name", str, "")


class BenchRaw(DataObject):
    kind = persistent("bias, flat, dark or science", str, "")
    chip = persistent("CCD", BenchChip, None)
    date_obs = persistent("Start of the exposure (UTC)", datetime.datetime, None)


def raws_of_the_night(kind):
    def query(s):
        start, end = CalibrationTarget.validity_window(s)
        return ((BenchRaw.kind == kind) & (BenchRaw.chip == s["chip"])
                & (BenchRaw.date_obs >= start) & (BenchRaw.date_obs < end))
    return query


def calibration_selectors(s):
    return {"chip": s["chip"], "time": s["time"]}


class BenchCalibration(CalibrationTarget):
    SELECTORS = ("chip", "time")
    chip = persistent("CCD", BenchChip, None)

    def make(self, workdir):
        return write(workdir, {"made": type(self).__name__})


class BenchBias(BenchCalibration):
    raws = dependency("Biases", BenchRaw, many=True, query=raws_of_the_night("bias"))


class BenchFlat(BenchCalibration):
    raws = dependency("Flats", BenchRaw, many=True, query=raws_of_the_night("flat"))
    bias = dependency("Bias", BenchBias, selectors=calibration_selectors)


class BenchHotPixels(BenchCalibration):
    raws = dependency("Darks", BenchRaw, many=True, query=raws_of_the_night("dark"))


class BenchColdPixels(BenchCalibration):
    flat = dependency("Flat", BenchFlat, selectors=calibration_selectors)


def science_selectors(s):
    return {"chip": s["raw"].chip, "time": s["raw"].date_obs}


class BenchCalibrated(ProcessTarget):
    SELECTORS = ("raw",)
    raw = dependency("Science frame", BenchRaw,
                     query=lambda s: BenchRaw.object_id == s["raw"].object_id)
    bias = dependency("Bias", BenchBias, selectors=science_selectors)
    flat = dependency("Flat", BenchFlat, selectors=science_selectors)
    hot = dependency("Hot pixels", BenchHotPixels, selectors=science_selectors)
    cold = dependency("Cold pixels", BenchColdPixels, selectors=science_selectors)

    def make(self, workdir):
        return write(workdir, {"raw": self.raw.object_id})


class BenchCoadd(ProcessTarget):
    SELECTORS = ("field",)
    field = persistent("Field name", str, "")
    frames = dependency("Calibrated frames", BenchCalibrated, many=True, selectors=lambda s: [
        {"raw": raw} for raw in sorted(BenchRaw.kind == "science", key=lambda r: r.object_id)])

    def make(self, workdir):
        return write(workdir, {"frames": len(self.frames)})


def write(workdir, content):
    path = workdir / "product.json"
    path.write_text(json.dumps(content))
    return path


def observe(scratch):
    """Store and commit the raw frames: per night and chip 3 biases, 3 flats, 3 darks
    and 1 science frame."""
    chips = [BenchChip(name=f"ccd{50 + i}") for i in range(CHIPS)]
    persistence.commit_all(chips)
    frames = []
    for night in range(NIGHTS):
        for chip in chips:
            for kind, count in (("bias", 3), ("flat", 3), ("dark", 3), ("science", 1)):
                for i in range(count):
                    when = START + datetime.timedelta(days=night, hours=1, minutes=i)
                    path = scratch / f"{kind}-{chip.name}-{night}-{i}.txt"
                    path.write_text(f"{kind} {chip.name} {night} {i}")
                    frame = BenchRaw(kind=kind, chip=chip, date_obs=when)
                    frame.store(path)
                    frames.append(frame)
    persistence.commit_all(frames)


def count_statements(db):
    seen = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def time_awe(url, scratch, repeat):
    db = persistence.connect(url)
    targets.set_data_client(dataserver.Client(scratch / "files"))
    observe(scratch)
    started = time.perf_counter()
    BenchCoadd.get(field="deep", dpu=targets.SerialDPU(targets.Progress(open(os.devnull, "w"))))
    made_in = time.perf_counter() - started
    plan = BenchCoadd.plan(field="deep")
    assert {node.state for node in plan} == {"up to date"}, repr(plan)
    seen = count_statements(db)
    results = {"nodes": len(plan.graph), "made in": made_in}
    for call in ("plan", "get"):
        times, counts = [], []
        for _ in range(repeat):
            del seen[:]
            started = time.perf_counter()
            getattr(BenchCoadd, call)(field="deep")
            times.append(time.perf_counter() - started)
            counts.append(len(seen))
        results[call] = (statistics.median(times), max(counts))
    results["fresh"] = statistics.median(fresh_get(url, scratch) for _ in range(repeat))
    db.close()
    return results


def fresh_get(url, scratch):
    """Seconds for a new Python process to start, connect and get() the coadd: what a
    one-off command pays, as ``snakemake -n`` does."""
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--fresh-get", url, str(scratch / "files")],
                   check=True)
    return time.perf_counter() - started


SNAKEFILE = """
NIGHTS, CHIPS = range({nights}), range({chips})
rule coadd:
    input: expand("cal/{{n}}-{{c}}.fits", n=NIGHTS, c=CHIPS)
    output: "coadd.fits"
    shell: "touch {{output}}"
rule calibrate:
    input: "raw/science-{{n}}-{{c}}.fits", "bias/{{n}}-{{c}}.fits", "flat/{{n}}-{{c}}.fits",
           "hot/{{n}}-{{c}}.fits", "cold/{{n}}-{{c}}.fits"
    output: "cal/{{n}}-{{c}}.fits"
    shell: "touch {{output}}"
rule bias:
    input: expand("raw/bias-{{{{n}}}}-{{{{c}}}}-{{i}}.fits", i=range(3))
    output: "bias/{{n}}-{{c}}.fits"
    shell: "touch {{output}}"
rule flat:
    input: expand("raw/flat-{{{{n}}}}-{{{{c}}}}-{{i}}.fits", i=range(3)), "bias/{{n}}-{{c}}.fits"
    output: "flat/{{n}}-{{c}}.fits"
    shell: "touch {{output}}"
rule hot:
    input: expand("raw/dark-{{{{n}}}}-{{{{c}}}}-{{i}}.fits", i=range(3))
    output: "hot/{{n}}-{{c}}.fits"
    shell: "touch {{output}}"
rule cold:
    input: "flat/{{n}}-{{c}}.fits"
    output: "cold/{{n}}-{{c}}.fits"
    shell: "touch {{output}}"
"""


def time_snakemake(scratch, repeat):
    """The same graph as a Snakemake workflow whose files all exist, oldest first."""
    workdir = scratch / "snakemake"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(SNAKEFILE.format(nights=NIGHTS, chips=CHIPS))
    stamp = time.time() - 3600
    for layer, names in enumerate([
            [f"raw/{k}-{n}-{c}-{i}.fits" for k in ("bias", "flat", "dark")
             for n in range(NIGHTS) for c in range(CHIPS) for i in range(3)]
            + [f"raw/science-{n}-{c}.fits" for n in range(NIGHTS) for c in range(CHIPS)],
            [f"{d}/{n}-{c}.fits" for d in ("bias", "hot") for n in range(NIGHTS) for c in range(CHIPS)],
            [f"flat/{n}-{c}.fits" for n in range(NIGHTS) for c in range(CHIPS)],
            [f"cold/{n}-{c}.fits" for n in range(NIGHTS) for c in range(CHIPS)],
            [f"cal/{n}-{c}.fits" for n in range(NIGHTS) for c in range(CHIPS)],
            ["coadd.fits"]]):
        for name in names:
            path = workdir / name
            path.parent.mkdir(exist_ok=True)
            path.touch()
            os.utime(path, (stamp + layer, stamp + layer))
    beside_python = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    executable = shutil.which("snakemake", path=beside_python)
    if executable is None:
        raise SystemExit("snakemake is not installed: pip install '.[bench]'")
    command = [executable, "-n", "--cores", "1", "--quiet"]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0 or "Nothing to be done" not in done.stdout + done.stderr:
            raise SystemExit(f"snakemake -n did not find the workflow up to date:\n"
                             f"{done.stdout}\n{done.stderr}")
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fresh-get", nargs=2, metavar=("URL", "FILES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fresh_get:
        persistence.connect(args.fresh_get[0])
        targets.set_data_client(dataserver.Client(args.fresh_get[1]))
        BenchCoadd.get(field="deep")
        return
    with tempfile.TemporaryDirectory(prefix="awe-bench-plan-") as scratch:
        scratch = Path(scratch)
        snakemake = time_snakemake(scratch, args.repeat)
        rows = []
        (scratch / "sqlite").mkdir()
        rows.append(("sqlite", time_awe(f"sqlite:///{scratch}/sqlite/awe.db",
                                        scratch / "sqlite", args.repeat)))
        with scratch_postgresql() as url:
            (scratch / "pg").mkdir()
            rows.append(("postgresql", time_awe(url, scratch / "pg", args.repeat)))
    print(f"snakemake -n over the same graph: {snakemake * 1000:.0f} ms (median of "
          f"{args.repeat})")
    print(f"{'database':<11} {'nodes':>5}  {'plan ms':>7} {'stmts':>5}  {'get ms':>6} "
          f"{'stmts':>5}  {'snakemake -n / get':>18}  {'new process + get ms':>20}  "
          f"{'ratio':>5}")
    for name, r in rows:
        (plan_s, plan_n), (get_s, get_n) = r["plan"], r["get"]
        print(f"{name:<11} {r['nodes']:>5}  {plan_s * 1000:>7.0f} {plan_n:>5}  "
              f"{get_s * 1000:>6.0f} {get_n:>5}  {snakemake / get_s:>17.1f}×  "
              f"{r['fresh'] * 1000:>20.0f}  {snakemake / r['fresh']:>4.1f}×")


if __name__ == "__main__":
    main()
