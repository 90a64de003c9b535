"""SourceList of a simulated exposure: against the simulator's truth and against
SExtractor (``source-extractor``) on the same calibrated image, on both databases; the
sources as rows (cone searches equal a brute-force selection) and their export."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage
from scipy.spatial import cKDTree

from targets import UP_TO_DATE, Source, SourceList
from targets.imaging.skymatch import cone_mask
from targets.ingest import ingest
from targets.raw import RawScienceFrame


@pytest.fixture
def source_list(store, simulated_night):
    """The night ingested and the source list of the first ccd1 science frame made."""
    ingest(simulated_night.raw + [simulated_night.reference])
    raw = (RawScienceFrame.chip.name == "ccd1").first()
    product = SourceList.get(raw=raw)
    truth = Table.read(os.path.join(simulated_night.truth, "exposures", raw.raw_file),
                       hdu="SOURCES")
    return product, truth[truth["chip"] == "ccd1"]


def _isolated_clean_stars(truth, mask):
    """Unsaturated stars with no source within 10 px brighter than 2.5 mag fainter and
    none brighter within 25 px (a bright star's or galaxy's wings pull centroids), no
    bad pixel within 3 px, and 10 px inside the edges."""
    xy = np.column_stack([truth["x"], truth["y"]])
    mags = np.asarray(truth["mag"])
    tree = cKDTree(xy)
    isolated = np.array([
        all(j == i or mags[j] > mags[i] + 2.5 for j in near)
        and all(j == i or mags[j] > mags[i] for j in far)
        for i, (near, far) in enumerate(zip(tree.query_ball_point(xy, 10.0),
                                            tree.query_ball_point(xy, 25.0)))])
    ny, nx = mask.shape
    inside = ((xy[:, 0] > 10) & (xy[:, 0] < nx - 11) & (xy[:, 1] > 10) & (xy[:, 1] < ny - 11))
    near_bad = ndimage.binary_dilation(mask != 0, iterations=3)
    clean = ~near_bad[np.clip(np.rint(xy[:, 1]).astype(int), 0, ny - 1),
                      np.clip(np.rint(xy[:, 0]).astype(int), 0, nx - 1)]
    return truth[(truth["kind"] == "star") & ~truth["saturated"] & isolated & inside & clean]


def test_stars_are_recovered_where_the_truth_puts_them(source_list):
    product, truth = source_list
    table = product.table()
    stars = _isolated_clean_stars(truth, product.exposure.images()[2])
    distance, row = cKDTree(np.column_stack([table["x"], table["y"]])).query(
        np.column_stack([stars["x"], stars["y"]]))
    snr = np.asarray(table["snr"])[row]
    bright = (distance < 2.0) & (snr > 20)
    assert bright.sum() > 80
    # Every star the truth has at S/N > 20 is found ...
    expected = stars["mag"] < np.max(stars["mag"][bright])
    assert np.mean(distance[expected] < 1.0) >= 0.99
    # ... within 0.1 px, or, where the photon noise allows no better (at S/N 20 and
    # this seeing the centroid's own error is ~0.12 px per axis), within the 99.9%
    # radius of its stated error (3.72 sigma per axis for a 2-D normal).
    sigma = np.asarray(table["xy_err"])[row][bright]
    within = distance[bright] <= np.maximum(0.1, 3.72 * sigma)
    assert np.mean(within) >= 0.99
    assert np.mean(distance[bright & (snr > 100)] < 0.1) >= 0.95
    # The stated errors (the PSF's sigma times sqrt(2) over S/N, an approximation for
    # the windowed centroid) are neither inflated nor far too small: the median offset
    # over its sigma is that of a 2-D normal (0.83) within -25% / +60%.
    assert 0.62 < np.median(distance[bright] / sigma) < 1.33
    # Calibrated magnitudes of bright stars: within 0.03 mag of the truth (median).
    good = bright & (snr > 50)
    assert np.median(np.asarray(table["mag_aper"])[row][good] - stars["mag"][good]) == \
        pytest.approx(0.0, abs=0.03)
    assert np.mean(np.asarray(table["class_star"])[row][good] > 0.5) > 0.9


def _sextractor(image_path, workdir, threshold, minarea):
    """Run SExtractor on a CalibratedExposure's file: its weight map as MAP_WEIGHT and
    its mask as the flag image; return its catalogue (XWIN 1-based)."""
    if shutil.which("source-extractor") is None:
        message = ("source-extractor is not installed: apt-get install source-extractor "
                   "(.ci/run does)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with fits.open(image_path) as hdul:
        fits.writeto(workdir / "science.fits", hdul[0].data, hdul[0].header)
        fits.writeto(workdir / "weight.fits", hdul["WEIGHT"].data)
        fits.writeto(workdir / "flags.fits", hdul["MASK"].data.astype(np.int16))
    (workdir / "columns.param").write_text(
        "XWIN_IMAGE\nYWIN_IMAGE\nFLUX_AUTO\nFLUXERR_AUTO\nFLAGS\nIMAFLAGS_ISO\n")
    share = "/usr/share/source-extractor"
    subprocess.run(
        ["source-extractor", str(workdir / "science.fits"), "-c", f"{share}/default.sex",
         "-CATALOG_NAME", str(workdir / "sextractor.fits"), "-CATALOG_TYPE", "FITS_1.0",
         "-PARAMETERS_NAME", str(workdir / "columns.param"),
         "-DETECT_THRESH", str(threshold), "-ANALYSIS_THRESH", str(threshold),
         "-DETECT_MINAREA", str(minarea), "-FILTER", "Y",
         "-FILTER_NAME", f"{share}/default.conv", "-DEBLEND_NTHRESH", "32",
         "-DEBLEND_MINCONT", "0.005", "-WEIGHT_TYPE", "MAP_WEIGHT",
         "-WEIGHT_IMAGE", str(workdir / "weight.fits"),
         "-FLAG_IMAGE", str(workdir / "flags.fits"), "-FLAG_TYPE", "OR",
         "-BACK_SIZE", "64", "-BACK_FILTERSIZE", "3", "-SATUR_LEVEL", "1e9",
         "-STARNNW_NAME", f"{share}/default.nnw", "-CHECKIMAGE_TYPE", "NONE",
         "-VERBOSE_TYPE", "QUIET"],
        check=True, cwd=workdir)
    return Table.read(workdir / "sextractor.fits")


def test_sources_agree_with_sextractor(source_list, tmp_path):
    product, _ = source_list
    pars = product.process_parameters
    theirs = _sextractor(product.exposure.retrieve(), tmp_path, pars.threshold,
                         pars.minarea)
    ours = product.table()
    # Its detections at S/N > 10 that it measured whole: not truncated by the image's
    # edge (FLAGS 8, 16) and with no masked pixel in the isophote (IMAFLAGS_ISO), where
    # the two programs cannot be compared (e.g. the wings of a saturated star, whose
    # masked core and bleed trail cut them into pieces differently).
    snr = theirs["FLUX_AUTO"] / theirs["FLUXERR_AUTO"]
    whole = (theirs["FLAGS"] & (8 | 16)) == 0
    compared = theirs[(snr > 10) & whole & (theirs["IMAFLAGS_ISO"] == 0)]
    assert len(compared) > 150
    distance, row = cKDTree(np.column_stack([ours["x"], ours["y"]])).query(
        np.column_stack([compared["XWIN_IMAGE"] - 1, compared["YWIN_IMAGE"] - 1]))
    matched = distance < 0.3
    assert np.mean(matched) >= 0.98
    ratio = np.asarray(ours["flux_auto"])[row[matched]] / compared["FLUX_AUTO"][matched]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.01)


def test_sources_are_rows_found_by_cone_searches(source_list):
    product, _ = source_list
    assert product.n_sources == len(Source.sourcelist == product) > 200
    assert {n.state for n in SourceList.plan(raw=product.raw)} == {UP_TO_DATE}
    assert {type(o).__name__ for o in product.lineage()} >= {"CalibratedExposure",
                                                             "RawScienceFrame"}
    every = Source.all().columns("ra", "dec", "mag")
    for radius in (5 / 3600, 40 / 3600, 0.5):
        query = (Source.mag < 21) & Source.cone(product.ra, product.dec, radius)
        expected = every["object_id"][(every["mag"] < 21) & cone_mask(
            every["ra"], every["dec"], product.ra, product.dec, radius)]
        assert sorted(query.columns()["object_id"].tolist()) == sorted(expected.tolist())
    assert "cone(" in str(Source.cone(product.ra, product.dec, 0.01))


def test_source_lists_export_to_table_fits_and_votable(source_list, tmp_path):
    product, _ = source_list
    table = product.table()
    assert len(table) == product.n_sources and table["ra"].unit == "deg"
    assert list(table["number"]) == list(range(1, len(table) + 1))
    for name in ("sources.fits", "sources.xml"):
        product.write(tmp_path / name)
        back = Table.read(tmp_path / name)
        np.testing.assert_array_equal(back["ra"], table["ra"])
        np.testing.assert_array_equal(back["flags"], table["flags"])
    # The product's own file holds the same catalogue.
    made = Table.read(product.retrieve())
    np.testing.assert_array_equal(made["dec"], table["dec"])
