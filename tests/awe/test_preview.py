"""awe.preview: zscale pictures of images, the mask overlay, the cache by checksum."""

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

import targets
from awe import preview
from targets.calibrated_exposure import MASK_BITS
from tests.awe.conftest import connected


@pytest.fixture
def image():
    """A seeded 60 x 80 image: sky noise around 100 with one bright star."""
    rng = np.random.default_rng(7)
    data = rng.normal(100.0, 5.0, (60, 80))
    data[30, 40] = 5000.0
    return data


def test_preview_rgb_is_grey_zscaled_and_upside_down(image):
    before = image.copy()
    rgb = preview.preview_rgb(image)
    assert rgb.shape == (60, 80, 3) and rgb.dtype == np.uint8
    assert np.array_equal(image, before), "the input is not changed"
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert rgb[60 - 1 - 30, 40, 0] == 255, "the star, row 30 from the bottom, saturates"
    sky = rgb[..., 0].astype(float)
    assert 60 < np.median(sky) < 200, "zscale puts the sky mid-grey"
    assert sky.std() > 20, "and stretches its noise"


def test_preview_rgb_colours_each_mask_bit_with_the_lowest_first(image):
    mask = np.zeros(image.shape, dtype=np.uint8)
    mask[0, 0] = MASK_BITS["hot"]
    mask[0, 1] = MASK_BITS["cosmic"]
    mask[0, 2] = MASK_BITS["cold"] | MASK_BITS["saturated"]
    plain = preview.preview_rgb(image)
    masked = preview.preview_rgb(image, mask)
    untouched = np.flipud(mask == 0)
    assert np.array_equal(masked[untouched], plain[untouched])
    top = masked[-1]  # row 0 of the image is the PNG's last row

    def dominant(pixel):
        return int(np.argmax(pixel.astype(int) - pixel.min()))

    assert dominant(top[0]) == 0, "hot is red"
    assert dominant(top[1]) == 1, "a cosmic ray green"
    assert dominant(top[2]) == 2, "cold (2) wins over saturated (4): blue"


def test_preview_rgb_bins_large_images_keeping_masked_blocks(image):
    big = np.kron(image, np.ones((40, 40)))  # 2400 x 3200
    mask = np.zeros(big.shape, dtype=np.uint8)
    mask[5, 7] = MASK_BITS["cosmic"]
    rgb = preview.preview_rgb(big, mask, max_size=1000)
    factor = 4  # the smallest that brings 3200 within 1000
    assert rgb.shape[:2] == (2400 // factor, 3200 // factor)
    block = rgb[-1 - 5 // factor, 7 // factor]  # the block of pixel (5, 7), from the bottom
    assert block[1] > block[0], "one masked pixel colours its whole block"


def test_preview_rgb_of_a_flat_or_empty_image_is_black_not_an_error():
    assert not preview.preview_rgb(np.zeros((5, 5))).any()
    assert not preview.preview_rgb(np.full((5, 5), np.nan)).any()


@pytest.fixture
def reduced(reduced_home, monkeypatch):
    yield from connected(reduced_home, monkeypatch)


def test_preview_png_of_an_exposure_with_and_without_its_mask(reduced, tmp_path):
    exposure = targets.CalibratedExposure.all().first()
    assert preview.has_image(exposure) and preview.has_mask(exposure)
    with fits.open(exposure.retrieve()) as hdus:
        shape, bits = hdus[0].data.shape, hdus["MASK"].data.copy()
    bare = Image.open(preview.preview_png(exposure, tmp_path / "bare.png", framed=False))
    assert bare.mode == "L" and bare.size == (shape[1], shape[0])
    masked = np.asarray(Image.open(preview.preview_png(exposure, tmp_path / "mask.png",
                                                       mask=True, framed=False)))
    assert masked.shape == (shape[0], shape[1], 3)
    coloured = (masked.max(axis=2) != masked.min(axis=2))
    assert (coloured == np.flipud(bits != 0)).all(), "exactly the masked pixels are coloured"
    framed = Image.open(preview.preview_png(exposure, tmp_path / "framed.png", mask=True))
    assert framed.size[0] > 300, "a figure with axes, as awe show --png writes"


def test_preview_png_fails_for_objects_without_an_image_or_a_mask(reduced, tmp_path):
    source_list = targets.SourceList.all().first()
    assert not preview.has_image(source_list)
    with pytest.raises(ValueError, match="holds no image to preview"):
        preview.preview_png(source_list, tmp_path / "x.png")
    flat = targets.MasterFlat.all().first()
    assert preview.has_image(flat) and not preview.has_mask(flat)
    with pytest.raises(ValueError, match="no MASK extension"):
        preview.preview_png(flat, tmp_path / "x.png", mask=True)
    with pytest.raises(ValueError, match="no mask to overlay"):
        preview.cached_preview(flat, tmp_path, mask=True)
    assert not (tmp_path / "x.png").exists()


def test_cached_preview_is_made_once_per_checksum_and_mask_flag(reduced, tmp_path):
    exposure = targets.CalibratedExposure.all().first()
    plain = preview.cached_preview(exposure, tmp_path)
    masked = preview.cached_preview(exposure, tmp_path, mask=True)
    assert plain != masked and plain.parent == masked.parent == tmp_path / "previews"
    assert exposure.checksum.split(":")[1] in plain.name
    made = plain.stat().st_mtime_ns
    assert preview.cached_preview(exposure, tmp_path) == plain
    assert plain.stat().st_mtime_ns == made, "not drawn again"
    assert sorted(p.name for p in plain.parent.iterdir()) == sorted([plain.name, masked.name])
