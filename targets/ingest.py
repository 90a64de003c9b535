"""Ingest: raw files from the telescope become raw frames in the database and on the
data store; reference catalogues (ECSV) become `ReferenceCatalogue` products.

Each file is classified by its instrument's rules (`targets.instruments`), split into
one raw frame per chip, and committed with all its chips or not at all. A file that
cannot be read is reported and skipped; the other files go on.
"""

import dataclasses
import functools
import math
import os
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from dataserver import file_checksum
from persistence import commit_all

from .errors import InstrumentError
from .imaging.ccd import fits_section, section_text
from .imaging.combine import MAD_TO_SIGMA
from .imaging.reduce import telescope_wcs
from .instruments import read_frames
from .raw import RAW_CLASSES, Chip, RawFrame, RawScienceFrame, timezone_name
from .reference import ReferenceCatalogue, read_reference

__all__ = ["IngestReport", "ingest"]

_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT",
               "BZERO", "BSCALE", "END", "CHECKSUM", "DATASUM"}


@dataclasses.dataclass
class IngestReport:
    """What `ingest` did, file by file."""

    ingested: list = dataclasses.field(default_factory=list)
    """New raw frames (and reference catalogues)."""
    already: list = dataclasses.field(default_factory=list)
    """Raw frames of files ingested before (nothing done)."""
    failed: list = dataclasses.field(default_factory=list)
    """``(path, message)`` of each file that ingested nothing."""

    def __str__(self):
        lines = [f"ingested {len(self.ingested)} raw frames, {len(self.already)} were "
                 f"already in, {len(self.failed)} files failed"]
        lines += [f"  {message}" for _, message in self.failed]
        return "\n".join(lines)


def ingest(paths, *, instruments=None, progress=None):
    """Ingest raw FITS files: one raw frame per chip, stored and committed per file.

    Parameters
    ----------
    paths : iterable of path-like
        The raw FITS files, and reference catalogues (``.ecsv``, see
        `targets.reference.read_reference`).
    instruments : iterable of `targets.instruments.Instrument` or `str`, optional
        Instrument files (or objects) to try before the built-in ones.
    progress : callable, optional
        Called with each path when it is done (e.g. to advance a progress bar).

    Returns
    -------
    report : `IngestReport`
        Ingesting a file again is a no-op; a different file under a name already
        ingested, and a file that is not FITS, is truncated or lacks a required keyword,
        are reported in ``report.failed`` (file, extension, keyword and remedy).
    """
    report = IngestReport()
    chip_of = functools.cache(Chip.of)  # a night's files share a few chips
    for path in paths:
        ingest_one = _ingest_reference if os.fspath(path).endswith(".ecsv") else _ingest_file
        try:
            new, old = ingest_one(os.fspath(path), instruments, chip_of)
        except InstrumentError as err:
            report.failed.append((os.fspath(path), str(err)))
        else:
            report.ingested += new
            report.already += old
        if progress is not None:
            progress(path)
    return report


def _ingest_file(path, instruments, chip_of):
    instrument, infos = read_frames(path, instruments=instruments)
    new, old = [], []
    with tempfile.TemporaryDirectory(prefix="awe-ingest-") as scratch, \
            fits.open(path, memmap=False, do_not_scale_image_data=True) as hdul:
        # Every chip is checked before any is stored: a refused file leaves nothing.
        for info in infos:
            chip = chip_of(info.instrument, info.detector,
                           timezone_name(instrument.timezone(hdul[0].header)))
            frame = _raw_frame(info, chip)
            if isinstance(frame, RawScienceFrame):
                frame.footprint = _telescope_footprint(hdul[info.extension].header,
                                                       frame.data_section)
            name = frame.global_name(None)
            copy = Path(scratch) / name
            _write_chip(path, hdul, info.extension, copy)
            existing = (RawFrame.filename == name).first()
            if existing is None:
                _set_statistics(frame, hdul[info.extension], info)
                new.append((frame, copy))
            elif existing.checksum == file_checksum(copy):
                if isinstance(existing, RawScienceFrame) and not existing.footprint:
                    existing.footprint = frame.footprint  # ingested by an older version
                old.append(existing)
            else:
                raise InstrumentError(
                    f"{path}[{info.extension}]: a different file was ingested as {name} "
                    f"before ({existing!r}); raw files are never replaced: give the new "
                    "file a name of its own if it is a new exposure",
                    filename=path, extension=info.extension)
        for frame, copy in new:
            frame.store(copy)
    frames = [frame for frame, _ in new]
    commit_all(frames + old)
    return frames, old


def _ingest_reference(path, _instruments, _chip_of):
    catalogue = read_reference(path)
    existing = (ReferenceCatalogue.filename == catalogue.global_name(file_checksum(path))).first()
    if existing is not None:
        return [], [existing]
    catalogue.store(path)
    commit_all([catalogue])
    return [catalogue], []


def _raw_frame(info, chip):
    cls = RAW_CLASSES[info.obstype]
    section = (lambda s: "" if s is None else section_text(s))
    return cls(instrument=info.instrument, chip=chip, raw_file=os.path.basename(info.filename),
               extension=info.extension, date_obs=info.date_obs, night=info.night.isoformat(),
               exptime=info.exptime or 0.0, filter=info.filter or "",
               object=info.object or "", airmass=info.airmass, ra=info.ra, dec=info.dec,
               gain=info.gain, read_noise=info.read_noise, saturation=info.saturation,
               overscan_section=section(info.overscan), data_section=section(info.data))


def _telescope_footprint(header, data_section):
    """The corners of the chip's data section on the sky, by the header's WCS (``[]``
    if it has none): what finds the frames covering a position before any is
    calibrated."""
    try:
        wcs = telescope_wcs(header, data_section)
    except ValueError:
        return []
    rows, columns = fits_section(data_section)
    nx, ny = columns.stop - columns.start, rows.stop - rows.start
    ra, dec = wcs.pixel_to_world_values([-0.5, nx - 0.5, nx - 0.5, -0.5],
                                        [-0.5, -0.5, ny - 0.5, ny - 0.5])
    return [float(v) for pair in zip(ra, dec) for v in pair]


def _write_chip(path, hdul, extension, destination):
    """Write the chip's HDU as a single-HDU FITS file: the primary header's cards, then
    the chip's, and the data bytes copied verbatim (no rescaling, ever)."""
    hdu = hdul[extension]
    source = hdu.header
    header = fits.Header([("SIMPLE", True, "conforms to FITS standard"),
                          ("BITPIX", source["BITPIX"]), ("NAXIS", source["NAXIS"])])
    for axis in range(1, source["NAXIS"] + 1):
        header[f"NAXIS{axis}"] = source[f"NAXIS{axis}"]
    for key in ("BSCALE", "BZERO"):
        if key in source:
            header[key] = source[key]
    for card in (list(hdul[0].header.cards) if extension else []) + list(source.cards):
        key = card.keyword
        if key in _STRUCTURAL or key.startswith("NAXIS") or key == "":
            continue
        if key in ("COMMENT", "HISTORY"):
            header.add_comment(card.value) if key == "COMMENT" else header.add_history(card.value)
        else:
            header[key] = (card.value, card.comment)
    size = abs(source["BITPIX"]) // 8 * math.prod(
        source[f"NAXIS{axis}"] for axis in range(1, source["NAXIS"] + 1))
    with open(path, "rb") as raw:
        raw.seek(hdu.fileinfo()["datLoc"])
        data = raw.read(size)
    with open(destination, "wb") as out:
        out.write(header.tostring().encode("ascii"))
        out.write(data)
        out.write(b"\0" * (-len(data) % 2880))


def _set_statistics(frame, hdu, info):
    """Statistics of the data section in ADU, robust where it matters. ``hdu`` was read
    unscaled; BSCALE and BZERO are applied to the statistics, which is exact because
    they are linear."""
    data = hdu.data[info.data]
    lowest, highest = data.min(), data.max()
    if data.dtype.kind in "iu" and int(highest) - int(lowest) < _HISTOGRAM_BINS:
        median, mad = _integer_median_and_mad(data, int(lowest))
    else:
        data = data.astype(np.float64)
        median = float(np.median(data))
        mad = float(np.median(np.abs(data - median)))
    scale, zero = float(hdu.header.get("BSCALE", 1)), float(hdu.header.get("BZERO", 0))
    frame.median = median * scale + zero
    frame.mean = float(data.mean(dtype=np.float64)) * scale + zero
    frame.stdev = MAD_TO_SIGMA * mad * abs(scale)
    frame.minimum, frame.maximum = sorted([float(lowest) * scale + zero,
                                           float(highest) * scale + zero])


_HISTOGRAM_BINS = 1 << 20
"""Integer pixels spanning fewer values than this get their median from a histogram."""


def _integer_median_and_mad(data, lowest):
    """The exact median and median absolute deviation of integer pixels, from their
    histogram: a few times faster than ``np.median`` (a partition of every pixel), twice
    per raw frame, which made up half of ingest."""
    counts = np.bincount((data.ravel() - np.int64(lowest)))
    values = np.flatnonzero(counts)
    counts = counts[values]
    values = values + lowest
    median = _weighted_median(values, counts)
    deviations = np.abs(values - median)
    order = np.argsort(deviations, kind="stable")
    return median, _weighted_median(deviations[order], counts[order])


def _weighted_median(sorted_values, counts):
    """The median of ``sorted_values`` each repeated ``counts`` times, as ``np.median``
    gives it: the mean of the two middle values of an even count."""
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    lower, upper = np.searchsorted(cumulative, [(total - 1) // 2, total // 2], side="right")
    return (float(sorted_values[lower]) + float(sorted_values[upper])) / 2
