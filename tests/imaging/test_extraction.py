"""The source catalogue of an image: sky positions, calibrated magnitudes, the
star/galaxy indicator, and sep's failure modes guarded against."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from targets.imaging.astrometry import Background, detect_sources
from targets.imaging.extraction import extract_catalogue
from tests.imaging.starfield import make_starfield


@pytest.fixture(scope="module")
def field():
    return make_starfield(3)


def _extract(field, **kwargs):
    return extract_catalogue(field.image, field.weight, field.mask, field.wcs,
                             zeropoint=field.zeropoint, exptime=field.exptime,
                             gain=1.5, saturation=60000.0, **kwargs)


def test_positions_and_magnitudes_match_the_truth(field):
    table = _extract(field)
    truth = field.truth
    d, j = cKDTree(np.column_stack([table["x"], table["y"]])).query(
        np.column_stack([truth["x"], truth["y"]]))
    good = (d < 0.5) & (table["flags"][j] == 0) & (table["snr"][j] > 50)
    assert good.sum() > 100
    rows = table[j[good]]
    # The sky position is the WCS of the pixel position: within 0.01 arcsec of the truth.
    dra = (rows["ra"] - truth["ra"][good]) * np.cos(np.radians(truth["dec"][good])) * 3600
    assert np.median(np.hypot(dra, (rows["dec"] - truth["dec"][good]) * 3600)) < 0.02
    # Aperture-corrected magnitudes are total: the truth's within 0.02 mag (median).
    assert np.median(rows["mag_aper"] - truth["mag"][good]) == pytest.approx(0.0, abs=0.02)
    np.testing.assert_allclose(rows["mag_aper"], 23.9 - 2.5 * np.log10(rows["flux"]),
                               atol=1e-9)
    # All point sources: the indicator says so.
    assert np.mean(rows["class_star"] > 0.5) > 0.95
    assert table.meta["MAGLIM"] > np.max(truth["mag"][good])


def test_the_filter_and_deblending_are_parameters(field):
    default = _extract(field)
    assert len(_extract(field, threshold=10.0)) < len(default)
    assert len(_extract(field, minarea=30)) < len(default)
    assert len(_extract(field, filter_kernel="none")) != len(default)
    assert len(_extract(field, deblend_cont=1.0)) <= len(default)
    with pytest.raises(ValueError, match="unknown filter kernel 'boxy'"):
        _extract(field, filter_kernel="boxy")


def test_byte_order_and_strides_do_not_matter(field):
    """FITS arrays are big-endian, and cut-outs are not contiguous: sep refuses both
    unless they are converted, which extract_catalogue does."""
    native = _extract(field)
    wide = np.zeros((field.image.shape[0], 2 * field.image.shape[1]), ">f4")
    wide[:, ::2] = field.image
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous and strided.dtype.byteorder == ">"
    swapped = extract_catalogue(strided, field.weight.astype(">f8"),
                                field.mask.astype(">i2"), field.wcs,
                                zeropoint=field.zeropoint, exptime=field.exptime,
                                gain=1.5, saturation=60000.0)
    assert len(swapped) == len(native)
    np.testing.assert_allclose(swapped["x"], native["x"], atol=1e-4)


def test_a_crowded_image_does_not_overflow_seps_buffers():
    """One object larger than sep's default pixel stack (300,000 pixels) with more
    sub-objects than its default deblending limit (1024)."""
    rng = np.random.default_rng(5)
    size = 600
    image = np.zeros((size, size))
    for x, y in rng.uniform(5, size - 5, (1100, 2)).astype(int):
        image[y - 1:y + 2, x - 1:x + 2] += [[1, 2, 1], [2, 6, 2], [1, 2, 1]]
    image = 4.0 + 50.0 * image + rng.normal(0.0, 1.0, image.shape)  # all above 1.5 sigma
    flat = np.zeros(image.shape)
    background = Background(level=flat, rms=flat + 1.0, global_level=0.0, global_rms=1.0)
    assert np.count_nonzero(image > 1.5) > 300_000
    sources = detect_sources(image, background=background, threshold=1.5, minarea=3,
                             deblend_cont=1e-6)
    assert len(sources) > 1024
