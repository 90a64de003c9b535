"""Coadding calibrated exposures: AWE's `targets.imaging.regrid` (``regrid`` of each
exposure onto the common grid, then ``stack``) against reproject's
``reproject_and_coadd`` (``reproject_interp``, bilinear, ``combine_function='mean'``,
the weight maps as ``input_weights``), onto the same grid.

The inputs are real pipeline products: SIMCAM is simulated (one chip of 2048 x 4096,
one field, 5 dithers in r on each of 2 nights: 10 exposures), ingested into a SQLite
database and data store, and each exposure's `CalibratedExposure` is made (solved WCS,
weight map, zeropoint). The calibrated files are copied to ``<workdir>/calibrated``,
so a later run with the same ``--workdir`` skips simulation and calibration (the first
takes about 3 minutes).

Both methods get the same arrays, read from the files before the clock starts: each
science image less its median background (``SKYLEVEL``; `stack` needs frames on a
common background) and 0 where masked, its weight map and its WCS. Both scale them to
zeropoint 25 (ADU/s) inside the timed part: ours through ``regrid(scale=...)``,
reproject's by multiplying the data and dividing the weights by the factor squared.
The grid is `covering_grid` of the exposures' footprints at 0.25 arcsec/pixel.

The coadds differ by design in three ways: ours multiplies by the output/input pixel
area ratio (here 1 to within a few 10⁻⁴), rejects outliers (cosmic rays the masks missed),
and gives weight 0 where a bilinear stencil touches a masked pixel, where reproject
interpolates the weight map. They are compared where all 10 exposures cover a pixel
with weight: the median and 99th percentile of the absolute difference relative to
the coadd's sky noise (from its weight).

Run it with ``python bench/coadd.py [--workdir DIR] [--repeat 1]``.
"""

import argparse
import glob
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from timing import best_of  # bench/timing.py, before bench/ leaves the path

# bench/dataserver.py would hide the dataserver package: import the packages instead.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
from astropy.io import fits  # noqa: E402
from astropy.wcs import WCS, FITSFixedWarning  # noqa: E402
from reproject import reproject_interp  # noqa: E402
from reproject.mosaicking import reproject_and_coadd  # noqa: E402

import dataserver  # noqa: E402
import persistence  # noqa: E402
import targets  # noqa: E402
from targets.imaging.regrid import covering_grid, regrid, stack  # noqa: E402
from targets.simulator import simulate  # noqa: E402

SIMULATION = dict(nights=2, chips=1, size=(2048, 4096), seed=3, fields=1, dithers=5,
                  filters=("r",), star_density=20.0)
"""10 exposures of one 2048 x 4096 chip: 5 dithers in r on each of 2 nights."""

ZEROPOINT = 25.0
"""The common zeropoint the coadd is scaled to: mag = -2.5 log10(ADU/s) + 25."""

SCALE = 0.25
"""Output pixel scale, arcsec (SIMCAM's)."""


def calibrated_exposures(workdir):
    """Paths of the 10 calibrated exposures, made on the first run and kept."""
    done = workdir / "calibrated"
    paths = sorted(glob.glob(str(done / "*.fits")))
    if len(paths) == 10:
        return paths
    workdir.mkdir(parents=True, exist_ok=True)
    for earlier in ("sim", "files", "staging", "calibrated", "awe.db", "awe.db.locks"):
        path = workdir / earlier  # left by a run that was stopped
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    print(f"simulating and calibrating into {workdir} (once) ...", file=sys.stderr)
    sim = simulate(workdir / "sim", **SIMULATION)
    persistence.connect(f"sqlite:///{workdir}/awe.db")
    targets.set_data_client(dataserver.Client(workdir / "files"))
    report = targets.ingest(sim.raw + [sim.reference])
    assert not report.failed, report
    staging = workdir / "staging"
    staging.mkdir()
    for k, raw in enumerate(sorted(targets.RawScienceFrame.all(), key=lambda r: r.date_obs)):
        product = targets.CalibratedExposure.get(raw=raw)
        shutil.copyfile(product.retrieve(), staging / f"cal{k:02d}.fits")
        print(f"  {raw.raw_file}: seeing {product.seeing:.2f}\", zeropoint "
              f"{product.zeropoint:.3f}, SIP degree {product.sip_degree}", file=sys.stderr)
    staging.rename(done)
    return sorted(glob.glob(str(done / "*.fits")))


def read_exposure(path):
    """``(science, weight, wcs, scale)`` of a calibrated exposure: the science image
    less its median background and 0 where masked; ``scale`` takes ADU to ADU/s at
    `ZEROPOINT`."""
    with fits.open(path, memmap=False) as hdul:
        header = hdul[0].header
        weight = hdul["WEIGHT"].data.astype(np.float32)
        science = np.where(weight > 0, hdul[0].data - np.float32(header["SKYLEVEL"]),
                           0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    scale = 10 ** (0.4 * (ZEROPOINT - header["MAGZP"])) / header["EXPTIME"]
    return science, weight, wcs, scale


def footprint(science, wcs):
    ny, nx = science.shape
    corners = np.array([[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]])
    return np.column_stack(wcs.pixel_to_world_values(corners[:, 0], corners[:, 1]))


def ours(exposures, grid):
    """The stack, and how many exposures cover each pixel with weight."""
    frames = [regrid(science, weight, wcs, grid, scale=scale)
              for science, weight, wcs, scale in exposures]
    return stack(frames, grid.shape), frames


def coverage(frames, shape):
    covered = np.zeros(shape, np.int16)
    for f in frames:
        rows, cols = f.data.shape
        covered[f.y0:f.y0 + rows, f.x0:f.x0 + cols] += f.weight > 0
    return covered


def theirs(exposures, grid):
    data = [((science * np.float32(scale), wcs), weight / np.float32(scale ** 2))
            for science, weight, wcs, scale in exposures]
    return reproject_and_coadd([d for d, _ in data], grid.wcs(), shape_out=grid.shape,
                               input_weights=[w for _, w in data],
                               reproject_function=reproject_interp, order="bilinear",
                               combine_function="mean")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "awe-bench-coadd",
                        help="where the simulation and calibrated exposures are kept")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    exposures = [read_exposure(p) for p in calibrated_exposures(args.workdir.resolve())]
    grid = covering_grid([footprint(s, w) for s, _, w, _ in exposures], SCALE)

    ours_s, (coadd, frames) = best_of(args.repeat, lambda: ours(exposures, grid))
    theirs_s, (their_data, their_footprint) = best_of(args.repeat,
                                                      lambda: theirs(exposures, grid))

    full = ((coverage(frames, grid.shape) == len(exposures)) & (their_footprint > 0)
            & np.isfinite(their_data))
    difference = np.abs(coadd.data - their_data)[full]
    noise = 1 / np.sqrt(np.median(coadd.weight[full]))
    print(f"{len(exposures)} calibrated exposures of {exposures[0][0].shape[1]}x"
          f"{exposures[0][0].shape[0]} onto a {grid.nx}x{grid.ny} grid at {SCALE}\"/pixel, "
          f"best of {args.repeat}")
    print(f"{'method':44s} {'s':>7s} {'ours faster':>12s}")
    print(f"{'awe regrid + stack':44s} {ours_s:7.2f} {'':>12s}")
    print(f"{'reproject_and_coadd (interp bilinear, mean)':44s} {theirs_s:7.2f} "
          f"{theirs_s / ours_s:11.1f}x")
    print(f"pixels covered by all {len(exposures)} exposures: {full.sum():,}; coadd sky noise "
          f"{noise:.4g} ADU/s")
    print(f"|ours - reproject| / sky noise: median {np.median(difference) / noise:.4f}, "
          f"99th percentile {np.percentile(difference, 99) / noise:.4f}, "
          f"99.99th {np.percentile(difference, 99.99) / noise:.2f}")
    print(f"values rejected by our stack there: "
          f"{100 * (1 - coadd.count[full].mean() / len(exposures)):.3f}%")


if __name__ == "__main__":
    main()
