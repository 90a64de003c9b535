"""Pictures of products' images: a zscale PNG of a file's image, with its mask
overlaid on request, for ``awe show --png`` and the web's object pages.

The picture is computed from the file alone, and a product's file never changes, so
`cached_preview` keeps each picture on disk under the file's checksum: a page shown
again costs a file lookup, not a zscale of a million pixels.
"""

import math
import os
import tempfile
from pathlib import Path

import numpy as np

import targets
from targets.calibrated_exposure import MASK_BITS

__all__ = ["MASK_COLOURS", "PREVIEW_MAX", "cached_preview", "has_image", "has_mask",
           "preview_png", "preview_rgb", "read_image"]

PREVIEW_MAX = 1024
"""Largest side of a bare preview [pixels]: larger images are binned by the smallest
integer factor that fits."""

MASK_COLOURS = {"hot": (255, 40, 40), "cold": (40, 110, 255), "saturated": (255, 215, 0),
                "cosmic": (0, 210, 90), "no_flat": (220, 0, 220)}
"""The colour of each bit of `targets.calibrated_exposure.MASK_BITS` in an overlay; a
pixel with several bits takes the colour of the lowest."""

MASK_OPACITY = 0.75
"""How much of a masked pixel's grey its overlay colour replaces."""

PREVIEW_VERSION = "1"
"""Part of every cached picture's name: bump it when the pictures change, so old
ones are not served."""

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.fz", ".fits.gz")


def has_image(obj):
    """Whether ``obj`` has a file with an image to preview: a FITS file, except a
    source list's (a table)."""
    return (isinstance(obj, targets.DataObject) and bool(obj.filename)
            and obj.filename.lower().endswith(_FITS_SUFFIXES)
            and not isinstance(obj, targets.SourceList))


def has_mask(obj):
    """Whether ``obj``'s file has a ``MASK`` extension to overlay (a calibrated
    exposure's: the bits of `targets.calibrated_exposure.MASK_BITS`)."""
    return has_image(obj) and isinstance(obj, targets.CalibratedExposure)


def read_image(obj, *, mask=False):
    """``(image, mask)`` of ``obj``'s file: its first two-dimensional image HDU as
    floats, and its ``MASK`` extension (None unless ``mask``).

    Raises
    ------
    ValueError
        Raised if ``obj`` has no file, its file holds no image, or ``mask`` is asked
        for and the file has no ``MASK`` extension.
    """
    from astropy.io import fits

    name = f"{type(obj).__name__} {obj.object_id}"
    if not getattr(obj, "filename", None):
        raise ValueError(f"{name} has no file to preview")
    with fits.open(obj.retrieve(), memmap=False) as hdus:
        image = next((h.data for h in hdus if h.is_image and h.data is not None
                      and h.data.ndim == 2), None)
        if image is None:
            raise ValueError(f"{name}'s file {obj.filename} holds no image to preview "
                             "(a table? try awe query)")
        bits = None
        if mask:
            if "MASK" not in hdus:
                raise ValueError(f"{name}'s file {obj.filename} has no MASK extension to "
                                 "overlay; only calibrated exposures have one")
            bits = np.asarray(hdus["MASK"].data)
            if bits.shape != image.shape:
                raise ValueError(f"{name}'s MASK extension is {bits.shape[::-1]} pixels, "
                                 f"its image {image.shape[::-1]}: the file is damaged")
        return np.asarray(image, dtype=float), bits


def _zscale(image):
    """``image`` scaled to 0..1 between its zscale limits (NaN and infinities 0)."""
    from astropy.visualization import ZScaleInterval

    finite = np.isfinite(image)
    if not finite.any():
        return np.zeros(image.shape)
    low, high = ZScaleInterval().get_limits(image[finite])
    if not high > low:  # a flat image (a map of few bad pixels): its whole range
        low, high = float(image[finite].min()), float(image[finite].max())
    scaled = (image - low) / (high - low) if high > low else np.zeros(image.shape)
    return np.clip(np.where(finite, scaled, 0.0), 0.0, 1.0)


def _binned(array, factor, combine):
    """``array`` in blocks of ``factor`` x ``factor`` pixels, each ``combine``d (a
    ufunc's ``reduce``); rows and columns beyond the last whole block are dropped."""
    if factor == 1:
        return array
    ny, nx = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    blocks = array[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    return combine(combine(blocks, axis=3), axis=1)


def _mask_colours(bits):
    """``(colours, coloured)``: the RGB colour (0..255) of each pixel's lowest mask
    bit, and where there is one."""
    colours = np.zeros(bits.shape + (3,), dtype=float)
    coloured = np.zeros(bits.shape, dtype=bool)
    for name, bit in sorted(MASK_BITS.items(), key=lambda item: item[1]):
        here = (bits & bit).astype(bool) & ~coloured
        colours[here] = MASK_COLOURS[name]
        coloured |= here
    return colours, coloured


def preview_rgb(image, mask=None, *, max_size=PREVIEW_MAX):
    """An RGB picture (``uint8``, rows from the bottom of the image up, as FITS has
    them) of ``image`` on a zscale stretch, with the bits of ``mask`` coloured by
    `MASK_COLOURS`.

    Images larger than ``max_size`` are binned by the smallest integer factor that
    fits: mean values, and a block is masked if any of its pixels is, so that a
    cosmic ray stays visible.
    """
    image = np.asarray(image, dtype=float)
    factor = max(1, math.ceil(max(image.shape) / max_size))
    grey = _zscale(image)
    if factor > 1:
        grey = _binned(grey, factor, np.add.reduce) / factor ** 2
    rgb = np.repeat((grey * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    if mask is not None:
        bits = _binned(np.asarray(mask).astype(np.int64), factor, np.bitwise_or.reduce)
        colours, coloured = _mask_colours(bits)
        blended = rgb * (1 - MASK_OPACITY) + colours * MASK_OPACITY
        rgb[coloured] = (blended[coloured] + 0.5).astype(np.uint8)
    return rgb[::-1]  # PNG rows run top down


def preview_png(obj, path, *, mask=False, framed=True):
    """Write a preview of ``obj``'s image to ``path`` (PNG) on a zscale stretch, with
    its mask overlaid if ``mask``.

    Parameters
    ----------
    obj : `targets.DataObject`
        A product or raw frame with an image file.
    path : `str` or `os.PathLike`
        Where to write the PNG.
    mask : `bool`
        Colour the pixels of the file's ``MASK`` extension (`MASK_COLOURS`).
    framed : `bool`
        A figure with axes, a colour bar and the class, id and file in the title
        (``awe show --png``); else the bare image, one PNG pixel per image pixel (binned
        beyond `PREVIEW_MAX`), as web pages show it.

    Raises
    ------
    ValueError
        Raised if ``obj`` has no image file, or ``mask`` is asked for and it has no mask.
    """
    image, bits = read_image(obj, mask=mask)
    if not framed:
        from PIL import Image

        rgb = preview_rgb(image, bits)
        picture = Image.fromarray(rgb if bits is not None else rgb[..., 0])  # grey: 1/3
        picture.save(path, format="PNG")
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.visualization import ImageNormalize, ZScaleInterval

    figure, axes = plt.subplots(figsize=(7, 7 * min(image.shape[0] / image.shape[1], 2)))
    shown = axes.imshow(image, origin="lower", cmap="gray", interpolation="nearest",
                        norm=ImageNormalize(image[np.isfinite(image)],
                                            interval=ZScaleInterval()))
    if bits is not None:
        colours, coloured = _mask_colours(np.asarray(bits).astype(np.int64))
        axes.imshow(np.dstack([colours / 255, np.where(coloured, MASK_OPACITY, 0.0)]),
                    origin="lower", interpolation="nearest")
    figure.colorbar(shown, ax=axes, shrink=0.8)
    axes.set_title(f"{type(obj).__name__} {obj.object_id}\n{obj.filename}", fontsize=9)
    axes.set_xlabel("x [pixel]")
    axes.set_ylabel("y [pixel]")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def cached_preview(obj, cache_dir, *, mask=False):
    """The path of the bare preview of ``obj`` (`preview_png` with ``framed=False``),
    made on first use and kept under ``cache_dir/previews``, named by the file's
    checksum and the mask flag: a product's file never changes, so neither does its
    picture. Written to a temporary file and renamed, so a reader never sees half a
    picture, and two requests at once both get a whole one.

    Raises
    ------
    ValueError
        As `preview_png`.
    """
    if not has_image(obj) or not obj.checksum:
        raise ValueError(f"{type(obj).__name__} {obj.object_id} has no image to preview")
    if mask and not has_mask(obj):
        raise ValueError(f"{type(obj).__name__} {obj.object_id} has no mask to overlay; "
                         "only calibrated exposures have one")
    algorithm, _, digest = obj.checksum.partition(":")
    if not (algorithm.isalnum() and digest.isalnum()):
        raise ValueError(f"{type(obj).__name__} {obj.object_id} has a malformed checksum "
                         f"{obj.checksum!r}")
    folder = Path(cache_dir) / "previews"
    flag = "mask" if mask else "plain"
    path = folder / f"{algorithm}-{digest}-{flag}-v{PREVIEW_VERSION}.png"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=folder, prefix=".preview-", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as out:
            preview_png(obj, out, mask=mask, framed=False)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return path
