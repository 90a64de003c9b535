"""Positional cross-match of two catalogues of 10⁶ positions: AWE's zones cross-match
(`targets.imaging.skymatch.crossmatch`) against astropy's ``search_around_sky`` (every
pair within the radius, the same answer) and ``match_coordinates_sky`` (the nearest
neighbour of each position only), in one run on the same seeded positions.

The first catalogue is uniform over a 10 x 10 degree field straddling RA 0/360; the
second holds a counterpart of each (moved by 0.3 arcsec rms) and as many unrelated
positions. astropy's times include making the SkyCoord objects from the same arrays,
as a user of it would; ours start from the arrays. The pairs found are compared.

Run it with ``python bench/crossmatch.py [--size 1000000] [--radius 1.0] [--repeat 3]``.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from timing import best_of  # bench/timing.py, before bench/ leaves the path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
from astropy import units as u  # noqa: E402
from astropy.coordinates import SkyCoord, match_coordinates_sky, search_around_sky  # noqa: E402

from targets.imaging.skymatch import crossmatch  # noqa: E402


def catalogues(size, seed=42):
    rng = np.random.default_rng(seed)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-5)), np.sin(np.radians(5)),
                                           size)))
    ra = rng.uniform(-5, 5, size) % 360
    jitter = rng.normal(0, 0.3 / 3600, (2, size))
    other_dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-5)),
                                                 np.sin(np.radians(5)), size)))
    ra2 = np.concatenate([(ra + jitter[0] / np.cos(np.radians(dec))) % 360,
                          rng.uniform(-5, 5, size) % 360])
    dec2 = np.concatenate([dec + jitter[1], other_dec])
    return ra, dec, ra2, dec2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--radius", type=float, default=1.0, help="arcsec")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ra, dec, ra2, dec2 = catalogues(args.size)
    radius = args.radius

    ours_s, (i1, i2, _) = best_of(args.repeat, lambda: crossmatch(ra, dec, ra2, dec2, radius))

    def around():
        c1, c2 = SkyCoord(ra * u.deg, dec * u.deg), SkyCoord(ra2 * u.deg, dec2 * u.deg)
        return search_around_sky(c1, c2, radius * u.arcsec)

    def nearest():
        c1, c2 = SkyCoord(ra * u.deg, dec * u.deg), SkyCoord(ra2 * u.deg, dec2 * u.deg)
        return match_coordinates_sky(c1, c2)

    around_s, (a, b, _, _) = best_of(args.repeat, around)
    nearest_s, _ = best_of(args.repeat, nearest)
    same = set(zip(i1.tolist(), i2.tolist())) == set(zip(a.tolist(), b.tolist()))
    print(f"{args.size:,} x {2 * args.size:,} positions, radius {radius} arcsec, "
          f"best of {args.repeat}")
    print(f"{'method':34s} {'s':>7s} {'pairs':>10s} {'ours faster':>12s}")
    print(f"{'awe crossmatch (zones)':34s} {ours_s:7.2f} {len(i1):10,d} {'':>12s}")
    print(f"{'astropy search_around_sky':34s} {around_s:7.2f} {len(a):10,d} "
          f"{around_s / ours_s:11.1f}x")
    print(f"{'astropy match_coordinates_sky':34s} {nearest_s:7.2f} {'(nearest)':>10s} "
          f"{nearest_s / ours_s:11.1f}x")
    print(f"same pairs as search_around_sky: {same}")


if __name__ == "__main__":
    main()
