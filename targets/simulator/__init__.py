"""The simulator: realistic raw observing nights of the simulated mosaic camera SIMCAM,
with the truth to check reductions against.

`simulate` writes, under the output directory ``DIR``:

``raw/<night>/SIMCAM.<DATE-OBS>.fits``
    The raw files, as the camera writes them: a primary header with the observation
    keywords (``IMAGETYP`` BIAS, DARK, FLAT or OBJECT, ``DATE-OBS`` UTC, ``EXPTIME``,
    ``FILTER``, ``OBJECT``, ``AIRMASS``, ``RA``/``DEC`` of the commanded pointing in
    degrees) and one uint16 image extension per CCD (``BZERO`` = 32768; ``EXTNAME``
    ccd1..ccdK, ``GAIN``, ``RDNOISE``, ``SATURATE``, ``BIASSEC``, ``TRIMSEC``/``DATASEC``
    and, for science frames, a TAN ``WCS`` with the telescope's pointing error). Per
    night: biases, darks, dome flats per filter, and science exposures of a few fields in each
    filter with dithers. ``<night>`` is the local date at the start of the night.
``reference/reference.ecsv``
    The reference catalogue an external survey would give: stars with positions and
    magnitudes perturbed by their stated errors (columns ``ra_error``, ``dec_error`` in
    arcsec, ``<filter>_error`` in mag).
``truth/``
    ``parameters.json``: the arguments of the run (the same ones give identical files).

    ``detectors.ecsv``: per chip ``gain`` (e-/ADU), ``read_noise`` (e-), ``bias_level``
    (ADU, mean of the data area of ``BIAS``), ``dark_current`` (e-/s, typical),
    ``full_well`` (e-), ``saturate`` (ADU), ``n_hot``, ``n_cold``.

    ``chips/<chip>.fits``: images of the chip: ``BIAS`` (noiseless bias in ADU, raw
    shape incl. overscan; a raw bias is ``BIAS`` + the frame's ``bias_offset`` + read
    noise, + ``bias_data_offset`` over the data area if that fault is simulated),
    ``DARK`` (e-/s), ``HOT`` and ``COLD`` (uint8 masks) and ``FLAT_<FILTER>`` (e.g.
    ``FLAT_R``), the true flat field: vignetting x pixel response x dust rings x cold
    pixels, not normalised (a source's electrons are its true flux times the flat); each
    ``FLAT_*`` header gives ``MEAN``, its mean over the chip. These are over the data
    area (``TRIMSEC``).

    ``catalogue.ecsv``: every source: position, magnitudes per filter above the
    atmosphere, galaxy shape, and light curves (variables: amplitude, period, phase;
    transients: start, decay); `true_magnitudes` gives any source's magnitude at any time.

    ``exposures.ecsv``: one row per raw file and chip: ``file``, ``chip``, ``night``,
    ``obstype``, ``filter``, ``field``, ``mjd`` (start), ``exptime``, ``airmass``,
    ``seeing`` (FWHM arcsec), ``sky`` (e-/s/pixel where the flat is 1), ``extinction``
    (mag/airmass), ``zeropoint_e`` (mag giving 1 e-/s), ``zeropoint`` (mag giving 1 ADU/s in
    the frame bias-subtracted and divided by the true flat; = ``zeropoint_e`` - 2.5
    log10 gain), ``bias_offset`` (ADU, this frame's bias drift), ``lamp`` (flats: e- where
    the flat is 1), ``pointing_error_ra``/``_dec`` (arcsec, true minus header),
    ``rotation_error`` (deg), ``scale_error`` (fraction), ``n_cosmic``.

    ``exposures/<raw file name>``: per raw file: one header-only HDU per chip with the
    true WCS (science frames), ``SOURCES`` (science: ``id``, ``chip``, ``x``, ``y``
    0-based pixel of the raw and trimmed image, ``ra``, ``dec``, ``mag`` at mid-exposure,
    ``flux`` e- above the flat, ``peak`` e- at the brightest pixel, ``saturated``) and
    ``COSMICS`` (``chip``, ``x``, ``y``, ``electrons``).

Everything is drawn from seeded streams: the same arguments give byte-identical files.

Two faults, off by default, make deliberately bad calibrations for testing quality
control (`targets.ProcessTarget.verify`): ``bias_data_offset`` shifts the data area of
the raw biases from their overscan, so the master bias has that level, and
``extra_dead_columns`` adds dead columns to every chip, so its flats have them. Each
changes only the truth it names (the noise drawn for frames whose mean it changes is
drawn anew).

Examples
--------
>>> summary = simulate("/tmp/sim", nights=1, chips=4, size=(512, 512), seed=1)  # doctest: +SKIP
>>> len(summary.raw)                                                              # doctest: +SKIP
42
"""

import dataclasses
import datetime
import json
import math
import os
import shutil
import tempfile
from zoneinfo import ZoneInfo

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from astropy.wcs import WCS

from ..instruments import Instrument
from ._camera import grid, make_chips
from ._render import add_cosmics, read_out, render_galaxies, render_stars
from ._sky import (airmass, local_sidereal_degrees, make_catalogue, make_reference, rng,
                   true_magnitudes)

__all__ = ["Simulation", "simulate", "true_magnitudes"]

_MJD0 = datetime.datetime(1858, 11, 17)
_EXPTIME = {"g": 150.0, "r": 120.0, "i": 120.0}
_READOUT = 40.0
DARK_EXPTIME = 300.0
"""Seconds of each dark: long enough for hot pixels to stand out of the read noise."""
_DITHERS = ((0.0, 0.0), (24.0, 14.0), (-18.0, 28.0), (12.0, -22.0), (-26.0, -10.0))
"""Dither offsets, arcsec (east, north)."""
POINTING_ERROR = 3.0
"""Telescope pointing error, arcsec rms per axis."""
ROTATION_ERROR = 0.02
"""Rms of the true rotation's difference from the header's, degrees."""
SCALE_ERROR = 2e-4
"""Rms of the true pixel scale's fractional difference from the header's."""


@dataclasses.dataclass
class Simulation:
    """What `simulate` wrote."""

    out: str
    """The output directory."""
    raw: list
    """Paths of the raw files, in time order."""
    truth: str
    """The truth directory."""
    reference: str
    """The reference catalogue."""
    nights: list
    """The nights (`datetime.date`) simulated."""


def simulate(out, *, nights=1, chips=4, size=(1024, 1024), seed=0, start="2024-03-11",
             filters=("g", "r"), fields=3, dithers=3, biases=10, darks=3, flats=7,
             star_density=8.0, galaxy_density=15.0, cosmic_rate=2e-7, bias_data_offset=0.0,
             extra_dead_columns=0, overwrite=False, progress=None):
    """Write the raw files of realistic observing nights of SIMCAM, with the truth.

    Parameters
    ----------
    out : `str` or path-like
        Output directory (see the module docstring for its layout); made if missing.
    nights : `int`
        Number of consecutive nights.
    chips : `int`
        CCDs in the mosaic (1 to 16), laid out in a grid with small gaps.
    size : ``(nx, ny)``
        Data pixels per CCD (at least 64 each); each raw image has 32 overscan
        columns more.
    seed : `int`
        Seed of everything: the same arguments give byte-identical files.
    start : `str` or `datetime.date`
        Local date of the first night's evening.
    filters : sequence of `str`
        Filters observed (of SIMCAM's g, r, i).
    fields, dithers : `int`
        Fields observed per night, and dithered exposures per field and filter.
    biases, darks, flats : `int`
        Biases, darks (of `DARK_EXPTIME`) per night, and dome flats per filter and night.
    star_density, galaxy_density : `float`
        Sources per square arcminute to magnitude 24.
    cosmic_rate : `float`
        Cosmic-ray events per pixel per second.
    bias_data_offset : `float`
        A fault: ADU added to the data area of every raw bias but not to its overscan,
        as if the bias changed after the biases were taken. The master bias comes out
        with this level; 0 (the default) simulates a healthy camera.
    extra_dead_columns : `int`
        A fault: dead columns added to every chip (beyond the one the second, or only,
        chip always has), up to half the chip's width; 0 (the default) adds none.
    overwrite : `bool`
        Replace an earlier simulation in ``out``.
    progress : callable, optional
        Called as ``progress(done, total, path)`` after each file written.

    Returns
    -------
    summary : `Simulation`

    Raises
    ------
    ValueError
        Raised if an argument is out of range, or ``out`` already holds a simulation
        and ``overwrite`` is false.
    """
    nx, ny = _checked(nights, chips, size, filters, fields, dithers, biases, darks, flats,
                      bias_data_offset=bias_data_offset,
                      extra_dead_columns=extra_dead_columns)
    camera = Instrument.load("simcam")
    unknown = [f for f in filters if f not in camera.filters]
    if unknown:
        raise ValueError(f"filter(s) {unknown} are not SIMCAM's; choose among "
                         f"{sorted(camera.filters)}")
    out = os.path.abspath(os.fspath(out))
    _check_out(out, overwrite)
    start = start if isinstance(start, datetime.date) else datetime.date.fromisoformat(start)
    sim, site = camera.simulation, camera.site
    scale = float(sim.get("pixel_scale", 0.25))
    zone = ZoneInfo(site["timezone"])
    filters = list(filters)

    chip_truth = make_chips(seed, chips, nx, ny, sim, filters,
                            extra_dead_columns=extra_dead_columns)
    schedule = _schedule(start, nights, filters, fields, dithers, biases, darks, flats,
                         zone)
    mjds = [e["mjd"] for e in schedule]
    field_list = _fields(seed, fields, start, zone, site)
    columns, rows = grid(chips)
    gap = float(sim.get("gap", 40))
    half_diag = math.hypot(columns * (nx + gap), rows * (ny + gap)) / 2 * scale
    radius = (half_diag + max(math.hypot(*d) for d in _DITHERS[:dithers]) + 20.0) / 3600.0
    catalogue = make_catalogue(seed, field_list, radius, star_density=star_density,
                               galaxy_density=galaxy_density,
                               filters=sorted(camera.filters),
                               mjd_range=(min(mjds), max(mjds)))
    reference, ref_ids = make_reference(seed, catalogue, sorted(camera.filters))
    catalogue["ref_id"] = [""] * len(catalogue)
    index = {sid: k for k, sid in enumerate(catalogue["id"])}
    catalogue["ref_id"] = catalogue["ref_id"].astype("U9")
    for ref, sid in zip(reference["id"], ref_ids):
        catalogue["ref_id"][index[sid]] = ref

    truth = os.path.join(out, "truth")
    for folder in ("raw", "truth/chips", "truth/exposures", "reference"):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    total = len(schedule) + 1
    rows_out, raw_paths = [], []
    context = dict(seed=seed, camera=camera, chips=chip_truth, catalogue=catalogue,
                   fields={f[0]: f for f in field_list}, scale=scale, filters=filters,
                   cosmic_rate=cosmic_rate, bias_data_offset=float(bias_data_offset))
    conditions = {n: _night_conditions(seed, n, filters) for n in range(nights)}
    for done, exposure in enumerate(schedule, 1):
        path = _exposure(out, exposure, conditions[exposure["night_index"]], context,
                         rows_out)
        raw_paths.append(path)
        if progress:
            progress(done, total, path)

    _write_truth(out, chip_truth, catalogue, rows_out, filters, dict(
        nights=nights, chips=chips, size=[nx, ny], seed=seed, start=start.isoformat(),
        filters=filters, fields=fields, dithers=dithers, biases=biases, darks=darks,
        flats=flats,
        star_density=star_density, galaxy_density=galaxy_density,
        cosmic_rate=cosmic_rate, **_faults(bias_data_offset=float(bias_data_offset),
                                           extra_dead_columns=extra_dead_columns)))
    reference_path = os.path.join(out, "reference", "reference.ecsv")
    _atomic(reference_path, lambda p: reference.write(p, format="ascii.ecsv"))
    if progress:
        progress(total, total, reference_path)
    return Simulation(out=out, raw=raw_paths, truth=truth, reference=reference_path,
                      nights=sorted({e["night"] for e in schedule}))


def _faults(**faults):
    """The faults simulated: those not 0, so that a healthy camera's parameters are as
    they were before faults could be simulated."""
    return {name: value for name, value in faults.items() if value}


def _checked(nights, chips, size, filters, fields, dithers, biases, darks, flats, *,
             bias_data_offset=0.0, extra_dead_columns=0):
    def whole(name, value, low, high):
        if not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ValueError(f"{name} = {value!r}: give a whole number from {low} to {high}")

    whole("nights", nights, 1, 366)
    whole("chips", chips, 1, 16)
    whole("fields", fields, 1, 10)
    whole("dithers", dithers, 1, len(_DITHERS))
    whole("biases", biases, 0, 100)
    whole("darks", darks, 0, 100)
    whole("flats", flats, 0, 100)
    try:
        nx, ny = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size = {size!r}: give two whole numbers (nx, ny)") from None
    if not (64 <= nx <= 8192 and 64 <= ny <= 8192):
        raise ValueError(f"size = {nx}x{ny}: each side must be from 64 to 8192 pixels")
    if not filters:
        raise ValueError("filters: give at least one filter")
    whole("extra_dead_columns", extra_dead_columns, 0, nx // 2)
    if not isinstance(bias_data_offset, (int, float, np.number)) or not math.isfinite(
            bias_data_offset):
        raise ValueError(f"bias_data_offset = {bias_data_offset!r}: give a number of ADU "
                         "(0 for a healthy camera)")
    return nx, ny


def _check_out(out, overwrite):
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"{out} is a file; give a directory for the simulation")
    held = [p for p in ("raw", "truth", "reference")
            if os.path.isdir(os.path.join(out, p)) and os.listdir(os.path.join(out, p))]
    if held and not overwrite:
        raise ValueError(f"{out} already holds a simulation ({', '.join(held)}); choose "
                         "another directory, or overwrite it (--overwrite)")
    if held:
        for part in held:
            shutil.rmtree(os.path.join(out, part))


def _mjd(utc):
    return (utc - _MJD0).total_seconds() / 86400.0


def _utc(local):
    return local.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def _schedule(start, nights, filters, fields, dithers, biases, darks, flats, zone):
    """Every exposure of every night in time order, with its time (UTC)."""
    schedule = []
    for n in range(nights):
        night = start + datetime.timedelta(days=n)

        def at(hour, minute=0):
            return _utc(datetime.datetime.combine(night, datetime.time(hour, minute),
                                                  tzinfo=zone))

        t = at(16)
        for k in range(biases):
            schedule.append(dict(obstype="bias", filter=filters[0], field=None, exptime=0.0,
                                 dither=None, utc=t))
            t += datetime.timedelta(seconds=_READOUT)
        for k in range(darks):
            schedule.append(dict(obstype="dark", filter=filters[0], field=None,
                                 exptime=DARK_EXPTIME, dither=None, utc=t))
            t += datetime.timedelta(seconds=DARK_EXPTIME + _READOUT)
        t = at(16, 30) if darks * (DARK_EXPTIME + _READOUT) < 1200 else t
        for f in filters:
            for k in range(flats):
                exptime = 8.0 + 2.0 * k
                schedule.append(dict(obstype="flat", filter=f, field=None, exptime=exptime,
                                     dither=None, utc=t))
                t += datetime.timedelta(seconds=exptime + _READOUT)
        t = at(21)
        for field in range(fields):
            for f in filters:
                for d in range(dithers):
                    exptime = _EXPTIME[f]
                    schedule.append(dict(obstype="science", filter=f, field=field,
                                         exptime=exptime, dither=d, utc=t))
                    t += datetime.timedelta(seconds=exptime + _READOUT + 20.0)
        for e in schedule[-(biases + darks + flats * len(filters)
                            + fields * len(filters) * dithers):]:
            e["night"], e["night_index"] = night, n
    for e in schedule:
        e["utc"] = e["utc"].replace(microsecond=0)
        e["mjd"] = _mjd(e["utc"])
    return schedule


def _fields(seed, count, start, zone, site):
    """``(name, ra, dec)`` of fields near the meridian in the first night."""
    g = rng(seed, "fields")
    mid = _utc(datetime.datetime.combine(start, datetime.time(22), tzinfo=zone))
    lst = local_sidereal_degrees(_mjd(mid), site["longitude"])
    result = []
    for k in range(count):
        ra = (lst + 15.0 * (k - (count - 1) / 2) + g.uniform(-3, 3)) % 360.0
        dec = float(np.clip(site["latitude"] + g.uniform(-12, 12), -89, 89))
        result.append((f"SIMF{k + 1:02d}", round(ra, 5), round(dec, 5)))
    return result


def _night_conditions(seed, night, filters):
    g = rng(seed, "night", night)
    return {"seeing": float(np.clip(g.lognormal(np.log(0.9), 0.2), 0.6, 1.6)),
            "zp_offset": {f: float(g.normal(0.0, 0.01)) for f in filters},
            "rotation": float(g.normal(0.0, ROTATION_ERROR)),
            "scale": float(g.normal(0.0, SCALE_ERROR))}


def _wcs(ra, dec, chip, scale, rotation):
    """A TAN WCS of a chip for a pointing at the mosaic centre (scale arcsec/pixel,
    rotation degrees; north up, east left)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(chip.nx + 1) / 2 - chip.centre[0], (chip.ny + 1) / 2 - chip.centre[1]]
    theta = math.radians(rotation)
    s = scale / 3600.0
    w.wcs.cd = [[-s * math.cos(theta), s * math.sin(theta)],
                [s * math.sin(theta), s * math.cos(theta)]]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


def _exposure(out, exposure, night, ctx, rows_out):
    """Simulate one raw file; write it and its truth; return its path."""
    camera, chips, scale = ctx["camera"], ctx["chips"], ctx["scale"]
    site, flt = camera.site, exposure["filter"]
    stamp = exposure["utc"].strftime("%Y-%m-%dT%H:%M:%S.000")
    name = f"SIMCAM.{stamp}.fits"
    g = rng(ctx["seed"], "exposure", stamp)
    info = camera.filters[flt]
    kind = exposure["obstype"]
    exptime = exposure["exptime"]
    mjd_mid = exposure["mjd"] + exptime / 2 / 86400.0

    primary = fits.Header()
    primary["ORIGIN"] = ("AWE simulator", "targets.simulator")
    primary["TELESCOP"] = camera.simulation.get("telescope", "SIM 2.2m")
    primary["INSTRUME"] = "SIMCAM"
    primary["OBSERVAT"] = site.get("name", "")
    primary["OBS-LAT"], primary["OBS-LONG"] = site["latitude"], site["longitude"]
    primary["OBS-ELEV"] = site.get("height", 0.0)
    primary["DATE-OBS"] = (stamp, "UTC start of exposure")
    primary["MJD-OBS"] = (round(exposure["mjd"], 8), "MJD (UTC) start of exposure")
    primary["EXPTIME"] = (exptime, "exposure time, s")
    primary["IMAGETYP"] = {"bias": "BIAS", "dark": "DARK", "flat": "FLAT",
                           "science": "OBJECT"}[kind]
    primary["FILTER"] = flt
    primary["NEXTEND"] = len(chips)
    primary["SIMSEED"] = (ctx["seed"], "simulator seed")

    truth = {"obstype": kind, "filter": flt, "mjd": exposure["mjd"], "exptime": exptime,
             "airmass": np.nan, "seeing": np.nan, "sky": np.nan,
             "extinction": float(info["extinction"]), "zeropoint_e": np.nan, "lamp": np.nan,
             "pointing_error_ra": np.nan, "pointing_error_dec": np.nan,
             "rotation_error": np.nan, "scale_error": np.nan, "field": ""}
    if kind in ("bias", "dark"):
        primary["OBJECT"] = kind
    elif kind == "flat":
        primary["OBJECT"] = "dome flat"
        truth["lamp"] = float(g.uniform(15000, 28000))
    else:
        field, ra0, dec0 = ctx["fields"][sorted(ctx["fields"])[exposure["field"]]]
        east, north = _DITHERS[exposure["dither"]]
        ra_cmd = (ra0 + east / 3600.0 / math.cos(math.radians(dec0))) % 360.0
        dec_cmd = dec0 + north / 3600.0
        err_ra, err_dec = g.normal(0.0, POINTING_ERROR, 2)
        ra_true = ra_cmd + err_ra / 3600.0 / math.cos(math.radians(dec_cmd))
        dec_true = dec_cmd + err_dec / 3600.0
        x_air = airmass(ra_true, dec_true, mjd_mid, site["latitude"], site["longitude"])
        seeing = float(np.clip(night["seeing"] * x_air ** 0.6 * (1 + g.normal(0, 0.06)),
                               0.5, 2.5))
        sky_mag = info["sky"] + g.normal(0.0, 0.08)
        zp_e = info["zeropoint"] - info["extinction"] * x_air + night["zp_offset"][flt]
        truth.update(field=field, airmass=x_air, seeing=seeing,
                     sky=10 ** (-0.4 * (sky_mag - info["zeropoint"])) * scale ** 2,
                     zeropoint_e=zp_e, pointing_error_ra=float(err_ra),
                     pointing_error_dec=float(err_dec),
                     rotation_error=night["rotation"], scale_error=night["scale"])
        primary["OBJECT"] = field
        primary["AIRMASS"] = (round(x_air, 4), "airmass at mid-exposure")
        primary["RA"] = (round(ra_cmd, 6), "commanded pointing RA, deg")
        primary["DEC"] = (round(dec_cmd, 6), "commanded pointing Dec, deg")
        primary["EQUINOX"] = 2000.0
        primary["RADESYS"] = "ICRS"

    hdus = [fits.PrimaryHDU(header=primary)]
    truth_hdus = [fits.PrimaryHDU(header=fits.Header(
        [("FILE", name), ("OBSTYPE", kind), ("FILTER", flt)]))]
    sources, cosmics = [], []
    for chip in chips:
        gc = rng(ctx["seed"], "exposure", stamp, chip.index)
        bias_offset = float(gc.normal(0.0, 0.5))
        electrons = np.zeros((chip.ny, chip.nx))
        flat = chip.flats[flt].astype(float)
        if kind == "flat":
            electrons = gc.poisson(truth["lamp"] * flat + chip.dark * exptime).astype(float)
        elif kind == "dark":
            electrons = gc.poisson(chip.dark * exptime).astype(float)
        elif kind == "science":
            true_wcs = _wcs(ra_true, dec_true, chip, scale * (1 + night["scale"]),
                            chip.rotation + night["rotation"])
            signal, table = _scene(ctx, chip, true_wcs, flt, mjd_mid, exptime,
                                   truth["zeropoint_e"], seeing / scale)
            sky = truth["sky"] * exptime
            lam = (signal + sky) * flat + chip.dark * exptime
            electrons = gc.poisson(lam).astype(float)
            table["peak"] = _peaks(lam, table)
            table["saturated"] = table["peak"] >= min(
                chip.full_well, (65535 - chip.bias_level) * chip.gain)
            sources.append(table)
            header = true_wcs.to_header()
            header["EXTNAME"] = chip.name
            truth_hdus.append(fits.ImageHDU(header=header))
        cx, cy, ce = add_cosmics(gc, electrons, exptime, ctx["cosmic_rate"])
        cosmics.append(Table({"chip": [chip.name] * cx.size, "x": cx, "y": cy,
                              "electrons": ce}))
        data = read_out(gc, electrons, chip, bias_offset,
                        data_offset=ctx["bias_data_offset"] if kind == "bias" else 0.0)
        header = fits.Header()
        header["EXTNAME"] = chip.name
        header["CCDNAME"] = chip.name
        header["INHERIT"] = True
        header["GAIN"] = (chip.gain, "e-/ADU")
        header["RDNOISE"] = (chip.read_noise, "read noise, e-")
        header["SATURATE"] = (chip.saturate, "saturation level, ADU")
        header["BIASSEC"] = (chip.biassec, "overscan")
        header["TRIMSEC"] = (chip.trimsec, "light-sensitive pixels")
        header["DATASEC"] = chip.trimsec
        if kind == "science":
            nominal = _wcs(ra_cmd, dec_cmd, chip, scale, 0.0)
            for card in nominal.to_header().cards:
                if card.keyword not in ("MJDREF", "DATEREF", "MJD-OBS", "DATE-OBS"):
                    header.append(card)
        hdu = fits.ImageHDU(data=data, header=header)
        hdus.append(hdu)
        row = dict(truth, file=name, chip=chip.name, night=exposure["night"].isoformat(),
                   bias_offset=bias_offset, n_cosmic=int(cx.size),
                   zeropoint=truth["zeropoint_e"] - 2.5 * math.log10(chip.gain))
        rows_out.append(row)

    night_dir = os.path.join(out, "raw", exposure["night"].isoformat())
    os.makedirs(night_dir, exist_ok=True)
    path = os.path.join(night_dir, name)
    _atomic(path, lambda p: fits.HDUList(hdus).writeto(p))
    if sources:
        truth_hdus.append(fits.table_to_hdu(vstack(sources)))
        truth_hdus[-1].name = "SOURCES"
    cosmic_table = Table({"chip": np.concatenate([c["chip"] for c in cosmics]).astype("U8"),
                          "x": np.concatenate([c["x"] for c in cosmics]).astype(np.int32),
                          "y": np.concatenate([c["y"] for c in cosmics]).astype(np.int32),
                          "electrons": np.concatenate([c["electrons"] for c in cosmics])})
    truth_hdus.append(fits.table_to_hdu(cosmic_table))
    truth_hdus[-1].name = "COSMICS"
    for key, value in (("SEEING", truth["seeing"]), ("AIRMASS", truth["airmass"]),
                       ("SKY", truth["sky"]), ("ZP_E", truth["zeropoint_e"]),
                       ("MJD-MID", mjd_mid)):
        if np.isfinite(value):
            truth_hdus[0].header[key] = value
    truth_path = os.path.join(out, "truth", "exposures", name)
    _atomic(truth_path, lambda p: fits.HDUList(truth_hdus).writeto(p))
    return path


def _scene(ctx, chip, wcs, flt, mjd, exptime, zp_e, fwhm):
    """The noiseless sources on a chip in e- (above the flat), and their truth table."""
    cat = ctx["catalogue"]
    x, y = wcs.all_world2pix(np.asarray(cat["ra"]), np.asarray(cat["dec"]), 0)
    margin = 60
    inside = (x > -margin) & (x < chip.nx + margin) & (y > -margin) & (y < chip.ny + margin)
    mag = true_magnitudes(cat, flt, mjd)
    keep = np.flatnonzero(inside & np.isfinite(mag))
    flux = 10 ** (-0.4 * (mag[keep] - zp_e)) * exptime
    image = np.zeros((chip.ny, chip.nx))
    is_gal = np.asarray(cat["kind"])[keep] == "galaxy"
    stars = ~is_gal
    render_stars(image, x[keep][stars], y[keep][stars], flux[stars], fwhm)
    if is_gal.any():
        gal = keep[is_gal]
        # position angle east of north -> angle from +x with east left, north up
        cd = wcs.wcs.cd
        sky_rotation = math.atan2(cd[1, 0], cd[1, 1])
        angle = np.radians(90.0 + np.asarray(cat["pa"])[gal]) + sky_rotation
        render_galaxies(image, x[gal], y[gal], flux[is_gal], np.asarray(cat["sersic_n"])[gal],
                        np.asarray(cat["r_eff"])[gal] / ctx["scale"],
                        np.asarray(cat["axis_ratio"])[gal], angle, fwhm)
    on = (x[keep] >= -0.5) & (x[keep] < chip.nx - 0.5) & (y[keep] >= -0.5) & (
        y[keep] < chip.ny - 0.5)
    table = Table({"id": np.asarray(cat["id"])[keep][on].astype("U16"),
                   "chip": np.array([chip.name] * int(on.sum()), dtype="U8"),
                   "kind": np.asarray(cat["kind"])[keep][on].astype("U6"),
                   "x": x[keep][on], "y": y[keep][on],
                   "ra": np.asarray(cat["ra"])[keep][on], "dec": np.asarray(cat["dec"])[keep][on],
                   "mag": mag[keep][on], "flux": flux[on]})
    return image, table


def _peaks(lam, table):
    iy = np.clip(np.round(np.asarray(table["y"])).astype(int), 0, lam.shape[0] - 1)
    ix = np.clip(np.round(np.asarray(table["x"])).astype(int), 0, lam.shape[1] - 1)
    return lam[iy, ix]


def _write_truth(out, chips, catalogue, rows, filters, parameters):
    truth = os.path.join(out, "truth")
    _atomic(os.path.join(truth, "parameters.json"), lambda p: _write_text(
        p, json.dumps(parameters, indent=1, sort_keys=True) + "\n"))
    det = Table(rows=[(c.name, c.gain, c.read_noise,
                       float(np.mean(c.bias[:, :c.nx])), c.dark_current, c.full_well,
                       c.saturate, int(c.hot.sum()), int(c.cold.sum()))
                      for c in chips],
                names=("chip", "gain", "read_noise", "bias_level", "dark_current",
                       "full_well", "saturate", "n_hot", "n_cold"))
    _atomic(os.path.join(truth, "detectors.ecsv"),
            lambda p: det.write(p, format="ascii.ecsv"))
    for c in chips:
        hdus = [fits.PrimaryHDU(),
                fits.ImageHDU(c.bias.astype(np.float32), name="BIAS"),
                fits.ImageHDU(c.dark.astype(np.float32), name="DARK"),
                fits.ImageHDU(c.hot.astype(np.uint8), name="HOT"),
                fits.ImageHDU(c.cold.astype(np.uint8), name="COLD")]
        for f in filters:
            hdu = fits.ImageHDU(c.flats[f], name=f"FLAT_{f.upper()}")
            hdu.header["MEAN"] = (float(np.mean(c.flats[f], dtype=float)), "mean of the flat")
            hdus.append(hdu)
        _atomic(os.path.join(truth, "chips", f"{c.name}.fits"),
                lambda p, hdus=hdus: fits.HDUList(hdus).writeto(p))
    _atomic(os.path.join(truth, "catalogue.ecsv"),
            lambda p: catalogue.write(p, format="ascii.ecsv"))
    columns = ["file", "chip", "night", "obstype", "filter", "field", "mjd", "exptime",
               "airmass", "seeing", "sky", "extinction", "zeropoint_e", "zeropoint",
               "bias_offset", "lamp", "pointing_error_ra", "pointing_error_dec",
               "rotation_error", "scale_error", "n_cosmic"]
    table = Table(rows=[[r[c] for c in columns] for r in rows], names=columns)
    _atomic(os.path.join(truth, "exposures.ecsv"),
            lambda p: table.write(p, format="ascii.ecsv"))


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)


def _atomic(path, write):
    """Write ``path`` through a temporary file in its directory, then rename: a file is
    either complete or absent."""
    folder = os.path.dirname(path)
    suffix = os.path.splitext(path)[1] or ".tmp"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-", suffix=suffix)
    os.close(fd)
    os.unlink(tmp)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
