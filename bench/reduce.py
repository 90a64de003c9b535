"""Reducing a simulated night: AWE's get() against a script without a database.

A night of SIMCAM (4 chips; 10 biases, 3 darks, 7 flats in g and r, and 20 science
exposures per chip) is simulated once. AWE ingests it into a fresh SQLite database and
data store and gets its `NightReport`, which makes every calibration and
`CalibratedExposure`: serially, and on a Dask `LocalCluster` of 2 workers. The
hand-written script does the same steps on the same raw files with the same array
functions (`targets.imaging.reduce`: numpy, astropy and sep) and writes the same FITS
products, with no database, data store or planning. The difference is the framework's
overhead: ingest (copying and checksumming each chip), planning, the database, storing
and checking every product.

Run it with ``python bench/reduce.py [--size 1024x1024] [--skip-dask]``.
"""

import argparse
import glob
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


def by_awe(sim, workdir, dpu=None):
    """Seconds to ingest the night and get its report; the report's table."""
    persistence.connect(f"sqlite:///{workdir}/awe.db")
    targets.set_data_client(dataserver.Client(workdir / "files"))
    started = time.perf_counter()
    report = targets.ingest(sim.raw + [sim.reference])
    assert not report.failed, report
    night = targets.NightReport.get(instrument="SIMCAM", night=sim.nights[0].isoformat(),
                                    dpu=dpu)
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
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="awe-bench-reduce-") as scratch:
        scratch = Path(scratch)
        sim = simulate(scratch / "sim", chips=CHIPS, size=size, seed=args.seed,
                       fields=FIELDS, dithers=DITHERS, star_density=40.0)
        raw_files = len(glob.glob(str(scratch / "sim" / "raw" / "*" / "*.fits")))
        n_cal = CHIPS * sum(1 for p in sim.raw if fits.getval(p, "IMAGETYP") == "OBJECT")
        rows = []
        for name, run in [("script", lambda d: by_hand(sim, d)),
                          ("awe serial", lambda d: by_awe(sim, d)),
                          ("awe dask 2", lambda d: by_awe(sim, d, targets.DaskDPU(
                              n_workers=2)))][: 2 if args.skip_dask else 3]:
            workdir = scratch / name.replace(" ", "-")
            workdir.mkdir()
            seconds, _ = run(workdir)
            rows.append((name, seconds))
    script = rows[0][1]
    print(f"{raw_files} raw files of {CHIPS} chips of {size[0]}x{size[1]}: "
          f"{n_cal} calibrated exposures and their calibrations")
    print(f"{'pipeline':<12} {'seconds':>8} {'s/exposure':>10} {'vs script':>10}")
    for name, seconds in rows:
        print(f"{name:<12} {seconds:>8.1f} {seconds / n_cal:>10.2f} "
              f"{100 * (seconds / script - 1):>+9.1f}%")
    if len(rows) == 3:
        print(f"dask 2 workers vs serial: {rows[1][1] / rows[2][1]:.2f}x faster")


if __name__ == "__main__":
    main()
