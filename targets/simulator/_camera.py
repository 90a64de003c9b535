"""The simulated mosaic's detectors: their true electronics, defects and flat fields,
and the geometry that puts them on the sky."""

import dataclasses
import math

import numpy as np

from ._sky import rng

__all__ = ["Chip", "make_chips"]

HOT_FRACTION = 2e-4
COLD_FRACTION = 2e-4


@dataclasses.dataclass
class Chip:
    """One detector's truth. Images are ``(ny, nx)`` over the data area, except
    `bias`, which covers the raw image (data and overscan)."""

    index: int
    name: str
    nx: int
    ny: int
    overscan: int
    gain: float                 # e-/ADU
    read_noise: float           # e-
    bias_level: float           # ADU
    full_well: float            # e-
    dark_current: float         # e-/s/pixel, typical (hot pixels above)
    saturate: float             # ADU, as the header says
    centre: tuple               # (x, y) of the chip centre on the focal plane, pixels
    rotation: float             # degrees, the chip's small true rotation on the focal plane
    bias: np.ndarray            # noiseless bias, ADU, raw shape
    dark: np.ndarray            # dark current, e-/s
    hot: np.ndarray             # bool
    cold: np.ndarray            # bool (low-response pixels and the dead column)
    response: np.ndarray        # pixel response without filter-dependent parts
    flats: dict                 # filter -> true flat field (response incl. vignetting)

    @property
    def raw_shape(self):
        return self.ny, self.nx + self.overscan

    @property
    def biassec(self):
        return f"[{self.nx + 1}:{self.nx + self.overscan},1:{self.ny}]"

    @property
    def trimsec(self):
        return f"[1:{self.nx},1:{self.ny}]"


def grid(chips):
    """``(columns, rows)`` of the mosaic's layout."""
    columns = math.ceil(math.sqrt(chips))
    return columns, math.ceil(chips / columns)


def make_chips(seed, chips, nx, ny, sim, filters, *, extra_dead_columns=0):
    """The truth of ``chips`` detectors of ``nx`` by ``ny`` data pixels, drawn from the
    ranges in the instrument file's ``simulation`` block.

    Every chip of a normal camera is healthy but the second, which has one dead column;
    ``extra_dead_columns`` more on every chip make a damaged camera, whose flats quality
    control should flag. They are drawn from a stream of their own, so that the rest of
    the truth is the normal camera's."""
    columns, rows = grid(chips)
    gap = float(sim.get("gap", 40))
    radius = math.hypot(columns * (nx + gap), rows * (ny + gap)) / 2
    result = []
    for index in range(chips):
        g = rng(seed, "chip", index)
        col, row = index % columns, index // columns
        centre = ((col - (columns - 1) / 2) * (nx + gap), (row - (rows - 1) / 2) * (ny + gap))
        overscan = int(sim.get("overscan_columns", 32))
        gain = round(g.uniform(*sim.get("gain", (1.5, 2.5))), 3)
        read_noise = round(g.uniform(*sim.get("read_noise", (4.0, 6.0))), 3)
        bias_level = round(g.uniform(*sim.get("bias_level", (500, 1000))), 2)
        full_well = round(g.uniform(*sim.get("full_well", (120000, 160000))), 0)
        dark_current = g.uniform(*sim.get("dark_current", (0.0005, 0.002)))
        saturate = float(min(65535.0, math.floor(bias_level + 0.98 * full_well / gain)))

        x = np.arange(nx + overscan)
        pattern = (1.5 * np.sin(2 * np.pi * x / g.uniform(80, 300) + g.uniform(0, 6.3))
                   + g.normal(0.0, 0.8, x.size))
        pattern[nx:] = 0.0  # the overscan is read from a virtual register: no pattern
        bias = np.broadcast_to(bias_level + pattern, (ny, nx + overscan)).copy()
        # a gentle ramp in the first rows, as many CCDs show
        bias[:, :nx] += 3.0 * np.exp(-np.arange(ny) / 15.0)[:, None]

        npix = nx * ny
        dark = np.full((ny, nx), dark_current)
        hot = np.zeros((ny, nx), bool)
        hot_index = g.choice(npix, max(1, g.poisson(HOT_FRACTION * npix)), replace=False)
        hot.flat[hot_index] = True
        dark.flat[hot_index] = 10 ** g.uniform(np.log10(0.05), np.log10(5.0), hot_index.size)

        response = 1.0 + g.normal(0.0, 0.008, (ny, nx))          # PRNU
        cold = np.zeros((ny, nx), bool)
        cold_index = g.choice(npix, max(1, g.poisson(COLD_FRACTION * npix)), replace=False)
        cold.flat[cold_index] = True
        response.flat[cold_index] *= g.uniform(0.0, 0.6, cold_index.size)
        dead = []
        if index == min(1, chips - 1):                             # one dead column
            dead.append(int(g.integers(nx // 8, nx - nx // 8)))
        if extra_dead_columns:
            healthy = np.setdiff1d(np.arange(nx // 8, nx - nx // 8), dead)
            dead += rng(seed, "dead columns", index).choice(
                healthy, extra_dead_columns, replace=False).tolist()
        for column in dead:
            cold[:, column] = True
            response[:, column] = 0.0
            hot[:, column] = False
            dark[:, column] = 0.0
        response *= _dust(g, nx, ny, 1.0)                          # dust on the window

        yy, xx = np.mgrid[0:ny, 0:nx]
        fx = centre[0] + (xx - (nx - 1) / 2)
        fy = centre[1] + (yy - (ny - 1) / 2)
        vignetting = 1.0 - 0.12 * (np.hypot(fx, fy) / radius) ** 2
        flats = {}
        for f in filters:
            gf = rng(seed, "flat", index, f)
            slope = gf.normal(0.0, 0.01)
            qe = 1.0 + slope * (xx / nx - 0.5)
            flats[f] = (vignetting * response * qe * _dust(gf, nx, ny, 0.6)).astype(np.float32)
        result.append(Chip(
            index=index, name=f"ccd{index + 1}", nx=nx, ny=ny, overscan=overscan, gain=gain,
            read_noise=read_noise, bias_level=bias_level, full_well=full_well,
            dark_current=dark_current, saturate=saturate, centre=centre,
            rotation=float(g.normal(0.0, 0.01)), bias=bias, dark=dark, hot=hot, cold=cold,
            response=response, flats=flats))
    return result


def _dust(g, nx, ny, rate):
    """Multiplicative dust donuts, out-of-focus shadows of dust grains: about 3 x
    ``rate`` per 1024x1024 pixels, at least one."""
    image = np.ones((ny, nx))
    count = max(1, g.poisson(3 * rate * nx * ny / 1024 ** 2))
    for _ in range(count):
        radius = g.uniform(6, 30) * min(1.0, min(nx, ny) / 512) ** 0.5
        width = g.uniform(1.5, 3.5)
        depth = g.uniform(0.02, 0.06)
        cx, cy = g.uniform(0, nx), g.uniform(0, ny)
        half = int(radius + 4 * width) + 1
        x0, x1 = max(0, int(cx) - half), min(nx, int(cx) + half + 1)
        y0, y1 = max(0, int(cy) - half), min(ny, int(cy) + half + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        r = np.hypot(xx - cx, yy - cy)
        ring = depth * np.exp(-0.5 * ((r - radius) / width) ** 2)
        inside = 0.3 * depth * (r < radius)
        image[y0:y1, x0:x1] *= 1.0 - np.maximum(ring, inside)
    return image
