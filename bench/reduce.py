"""Reducing a simulated night: AWE's get() against a script without a database.

A night of SIMCAM (4 chips; 10 biases, 3 darks, 7 flats in g and r, and 20 science
exposures per chip) is simulated once. AWE ingests it into a fresh SQLite database and
data store and gets its `NightReport`, which makes every calibration and
`CalibratedExposure`: serially, and on a Dask `LocalCluster` of 2 workers (made before
the ingest, so it starts meanwhile, and closed at the end, both inside the time). The
hand-written script does the same steps on the same raw files with the same array
functions (`targets.imaging.reduce`: numpy, astropy and sep) and writes the same FITS
products, with no database, data store or planning. The difference is the framework's
overhead: ingest (copying and checksumming each chip), planning, the database, storing
and checking every product.

The machine's speed drifts by 20% within minutes on a shared VM, so each pipeline runs
``--repeat`` times (default 3), the pipelines taking turns, and the best times are
compared.

Run it with ``python bench/reduce.py [--size 1024x1024] [--repeat 3] [--skip-dask]``.
"""

import argparse
import contextlib
import functools
import glob
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

# bench/dataserver.py would hide the dataserver package: import the packages instead.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
import dataserver  # noqa: E402
import persistence  # noqa: E402
import targets  # noqa: E402
from targets.imaging import reduce  # noqa: E402
from targets.imaging.ccd import section_text  # noqa: E402
from targets.instruments import read_frames  # noqa: E402
from targets.simulator import simulate  # noqa: E402

CHIPS, FIELDS, DITHERS = 4, 2, 5
"""4 chips x 2 fields x 2 filters x 5 dithers: 20 science exposures per chip."""


def by_awe(sim, workdir, make_dpu=contextlib.nullcontext):
    """Seconds to ingest the night and get its report, from making the DPU (a Dask
    cluster starts while the night is ingested) to closing it; the report's table."""
    persistence.connect(f"sqlite:///{workdir}/awe.db")
    targets.set_data_client(dataserver.Client(workdir / "files"))
    started = time.perf_counter()
    with make_dpu() as dpu:
        report = targets.ingest(sim.raw + [sim.reference])
        assert not report.failed, report
        night = targets.NightReport.get(instrument="SIMCAM",
                                        night=sim.nights[0].isoformat(), dpu=dpu)
    seconds = time.perf_counter() - started
    return seconds, night.table()


def by_hand(sim, workdir):
    """Seconds for the same reduction as a plain script over the raw files."""
    started = time.perf_counter()
    frames = defaultdict(list)  # (obstype, chip, filter) -> [(FrameInfo, pixels)]
    for path in sim.raw:
        _, infos = read_frames(path)
        with fits.open(path, memmap=False) as hdul:
            for info in infos:
                key = (info.obstype, info.detector,
                       info.filter if info.obstype in ("flat", "science") else None)
                frames[key].append((info, hdul[info.extension].header,
                                    hdul[info.extension].data))
    reference = Table.read(sim.reference, format="ascii.ecsv")
    zeropoints = []
    for chip in sorted({key[1] for key in frames}):
        biases = [reduce.prepare(d, _text(i.overscan), _text(i.data))
                  for i, _, d in frames["bias", chip, None]]
        bias = reduce.master_bias(biases)
        write(workdir / f"bias-{chip}.fits", bias)
        darks = frames["dark", chip, None]
        hot = reduce.hot_pixel_map(bias, [reduce.prepare(d, _text(i.overscan), _text(i.data))
                                          for i, _, d in darks], [i.exptime for i, _, _ in darks])
        write(workdir / f"hot-{chip}.fits", hot.astype(np.uint8))
        for band in ("g", "r"):
            flat = reduce.master_flat([reduce.prepare(d, _text(i.overscan), _text(i.data))
                                       for i, _, d in frames["flat", chip, band]], bias)
            write(workdir / f"flat-{chip}-{band}.fits", flat)
            cold = reduce.cold_pixel_map(flat)
            write(workdir / f"cold-{chip}-{band}.fits", cold.astype(np.uint8))
            for info, header, raw in frames["science", chip, band]:
                result = reduce.calibrate_science(
                    raw, overscan=_text(info.overscan), data=_text(info.data), bias=bias,
                    flat=flat, hot=hot, cold=cold, saturation=info.saturation,
                    gain=info.gain, read_noise=info.read_noise, reference=reference,
                    wcs_guess=reduce.telescope_wcs(header, _text(info.data)), filter=band,
                    exptime=info.exptime)
                zeropoints.append(result.zeropoint.value)
                fits.HDUList([fits.PrimaryHDU(result.science,
                                              result.astrometry.wcs.to_header(relax=True)),
                              fits.ImageHDU(result.weight, name="WEIGHT"),
                              fits.ImageHDU(result.mask, name="MASK")]).writeto(
                    workdir / f"cal-{chip}-{info.date_obs:%H%M%S}.fits")
    return time.perf_counter() - started, np.array(zeropoints)


def _text(slices):
    return "" if slices is None else section_text(slices)


def write(path, data):
    fits.PrimaryHDU(data).writeto(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1024x1024", help="pixels per chip, NXxNY")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every pipeline, in rotating order")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    pipelines = {"script": by_hand, "awe serial": by_awe,
                 "awe dask 2": functools.partial(
                     by_awe, make_dpu=functools.partial(targets.DaskDPU, n_workers=2))}
    if args.skip_dask:
        del pipelines["awe dask 2"]
    seconds = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="awe-bench-reduce-") as scratch:
        scratch = Path(scratch)
        sim = simulate(scratch / "sim", chips=CHIPS, size=size, seed=args.seed,
                       fields=FIELDS, dithers=DITHERS, star_density=40.0)
        raw_files = len(glob.glob(str(scratch / "sim" / "raw" / "*" / "*.fits")))
        n_cal = CHIPS * sum(1 for p in sim.raw if fits.getval(p, "IMAGETYP") == "OBJECT")
        names = list(pipelines)
        for round_ in range(args.repeat):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                workdir = scratch / f"{name.replace(' ', '-')}-{round_}"
                workdir.mkdir()
                seconds[name].append(pipelines[name](sim, workdir)[0])
                shutil.rmtree(workdir)
                print(f"round {round_ + 1}: {name} {seconds[name][-1]:.1f} s", file=sys.stderr)
    print(f"{raw_files} raw files of {CHIPS} chips of {size[0]}x{size[1]}: "
          f"{n_cal} calibrated exposures and their calibrations; {args.repeat} round(s), "
          "each pipeline once per round in rotating order")
    print(f"{'pipeline':<12} {'best s':>8} {'median s':>9} {'s/exposure':>10} "
          f"{'vs script':>10}  rounds")
    best_script = min(seconds["script"])
    for name, times in seconds.items():
        print(f"{name:<12} {min(times):>8.1f} {statistics.median(times):>9.1f} "
              f"{min(times) / n_cal:>10.2f} {100 * (min(times) / best_script - 1):>+9.1f}%  "
              + " ".join(f"{t:.1f}" for t in times))
    if "awe dask 2" in seconds:
        ratios = [s / d for s, d in zip(seconds["awe serial"], seconds["awe dask 2"])]
        print(f"dask 2 workers vs serial: {min(seconds['awe serial']) / min(seconds['awe dask 2']):.2f}x "
              f"faster (best against best); per round " + " ".join(f"{r:.2f}x" for r in ratios))


if __name__ == "__main__":
    main()
