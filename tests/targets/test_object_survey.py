"""Objects of a simulated survey: ten epochs of one field (two nights of five dithered
exposures in r), associated by ``Object.get`` from the raw data up, and checked against
the simulator's truth: one object per isolated star, variables found, constant stars
not, transients flagged new, and incremental statistics equal to a batch recomputation.

The heavy part (calibrating and extracting ten exposures) runs once per backend.
"""

import os

import numpy as np
import pytest
from astropy.table import Table
from scipy.spatial import cKDTree

import dataserver
import targets
from targets import Association, Object, SourceList
from targets.imaging.association import variability_indices
from targets.imaging.skymatch import footprint_contains, separation_arcsec
from targets.object import PHOTOMETRY_FLAGS, flux_calibration_error
from targets.ingest import ingest
from targets.raw import RawScienceFrame
from targets.simulator import simulate, true_magnitudes
from tests.conftest import empty_database

SURVEY = dict(nights=2, chips=1, size=(2048, 2048), seed=23, fields=1, dithers=5,
              filters=("r",), biases=5, darks=3, flats=5, star_density=40.0)
"""Ten epochs of one chip over two nights."""


@pytest.fixture(scope="module")
def survey_raw(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("survey"), **SURVEY)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def survey(request, tmp_path_factory, survey_raw):
    """The survey ingested and every object within the chip got (``Object.get``), with
    the source lists in time order and the truth catalogue."""
    workdir = tmp_path_factory.mktemp(f"survey-{request.param}")
    with empty_database(request, request.param, workdir):
        targets.set_data_client(dataserver.Client(workdir / "files"))
        try:
            ingest(survey_raw.raw + [survey_raw.reference])
            frame = RawScienceFrame.all().order_by("date_obs").first()
            ra, dec = frame.ra, frame.dec
            objects = Object.get(ra=ra, dec=dec, radius=0.1)
            lists = list(SourceList.all().order_by("mjd"))
            truth = Table.read(os.path.join(survey_raw.truth, "catalogue.ecsv"))
            yield {"objects": objects, "centre": (ra, dec), "lists": lists,
                   "mjds": np.array([s.mjd for s in lists]), "truth": truth}
        finally:
            targets.set_data_client(None)


def _covered_everywhere(lists, ra, dec, margin):
    """Which positions every source list covers, ``margin`` degrees inside."""
    inside = np.ones(len(ra), bool)
    for source_list in lists:
        inside &= footprint_contains(np.reshape(source_list.footprint, (-1, 2)), ra, dec,
                                     -margin)
    return inside


def _isolated(truth, radius_arcsec, mag_gap):
    """Sources with no other source within ``radius_arcsec`` brighter than
    ``mag_gap`` magnitudes fainter than themselves."""
    xyz = np.column_stack([np.cos(np.radians(truth["dec"])) * np.cos(np.radians(truth["ra"])),
                           np.cos(np.radians(truth["dec"])) * np.sin(np.radians(truth["ra"])),
                           np.sin(np.radians(truth["dec"]))])
    tree = cKDTree(xyz)
    mags = np.asarray(truth["r"])
    chord = 2 * np.sin(np.radians(radius_arcsec / 3600) / 2)
    return np.array([all(j == i or mags[j] > mags[i] + mag_gap for j in near)
                     for i, near in enumerate(tree.query_ball_point(xyz, chord))])


def _nearest_object(objects, ra, dec):
    ora = np.array([o.ra for o in objects])
    odec = np.array([o.dec for o in objects])
    index, distance = [], []
    for r, d in zip(ra, dec):
        sep = separation_arcsec(ora, odec, r, d)
        k = int(np.argmin(sep))
        index.append(k)
        distance.append(sep[k])
    return np.array(index), np.array(distance)


def test_every_epoch_is_associated_once(survey):
    lists = survey["lists"]
    assert len(lists) == 10
    assert Association.sourcelist.is_in([s.object_id for s in lists]).count() == 10
    # Asking again makes and associates nothing more.
    again = Object.get(ra=survey["centre"][0], dec=survey["centre"][1], radius=0.1)
    assert [o.object_id for o in again] == [o.object_id for o in survey["objects"]]
    assert Association.sourcelist.is_in([s.object_id for s in lists]).count() == 10


def test_one_object_per_isolated_star(survey):
    lists, truth = survey["lists"], survey["truth"]
    constant_star = (truth["kind"] == "star") & (truth["variability"] == "none")
    # S/N > 20 in every epoch, and not saturated in any.
    bright = (np.asarray(truth["r"]) < 21.0) & (np.asarray(truth["r"]) > 16.0)
    isolated = _isolated(truth, 5.0, 2.5)
    inside = _covered_everywhere(lists, truth["ra"], truth["dec"], 10 / 3600)
    stars = truth[constant_star & bright & isolated & inside]
    assert len(stars) > 100
    objects = survey["objects"]
    index, distance = _nearest_object(objects, stars["ra"], stars["dec"])
    assert np.all(distance < 0.3)
    # Exactly one object each, holding all ten detections.
    assert len(set(index.tolist())) == len(stars)
    counts = np.array([objects[k].n_detections for k in index])
    assert np.mean(counts == 10) >= 0.99
    others = [o for k, o in enumerate(objects) if k not in set(index.tolist())]
    near = np.array([np.min(separation_arcsec(stars["ra"], stars["dec"], o.ra, o.dec))
                     for o in others])
    assert np.all(near > 1.0), "a second object sits on an isolated star"


def test_variables_are_found_and_constant_stars_are_not(survey):
    lists, mjds, truth = survey["lists"], survey["mjds"], survey["truth"]
    isolated = _isolated(truth, 5.0, 2.5)
    inside = _covered_everywhere(lists, truth["ra"], truth["dec"], 10 / 3600)
    stars = truth[(truth["kind"] == "star") & isolated & inside & (truth["r"] < 21.0)]
    objects = survey["objects"]
    index, distance = _nearest_object(objects, stars["ra"], stars["dec"])
    found = [objects[k] for k in index]
    # The variability each star really showed at the ten epochs (true fluxes).
    true_flux = np.array([10 ** (-0.4 * (true_magnitudes(stars, "r", mjd) - 23.9))
                          for mjd in mjds])
    sampled_amplitude = (true_flux.max(axis=0) - true_flux.min(axis=0)) / 2
    true_v = true_flux.std(axis=0, ddof=1) / true_flux.mean(axis=0)
    errors = np.array([np.median(o.lightcurve()["flux_err"]) for o in found])
    flagged = np.array([(o.eta > 1) and (o.v > 0.1) for o in found])
    periodic = np.asarray(stars["variability"]) == "periodic"
    # Variables whose sampled amplitude exceeds 5 sigma and whose sampled light curve
    # has V > 0.12 (V > 0.1 cannot be asked of a star that did not vary that much).
    strong = periodic & (sampled_amplitude > 5 * errors) & (true_v > 0.12)
    assert strong.sum() >= 3
    assert all(found[k].eta > 1 and found[k].v > 0.1 for k in np.flatnonzero(strong))
    constant = np.asarray(stars["variability"]) == "none"
    assert constant.sum() > 100
    assert np.mean(flagged[constant]) <= 0.01


def test_transients_are_flagged_new(survey):
    lists, mjds, truth = survey["lists"], survey["mjds"], survey["truth"]
    isolated = _isolated(truth, 3.0, 2.5)
    inside = _covered_everywhere(lists, truth["ra"], truth["dec"], 10 / 3600)
    transients = truth[(truth["variability"] == "transient") & isolated & inside]
    # Those that appeared after the first epoch, bright enough at their first epoch
    # (r < 20.8: S/N > 20, the new-object flag's threshold, with room for the noise).
    mags_then = np.array([true_magnitudes(transients, "r", mjd) for mjd in mjds])
    first = np.argmax(np.isfinite(mags_then), axis=0)
    appeared = (np.asarray(transients["t_start"]) > mjds[0]) & np.any(
        np.isfinite(mags_then), axis=0)
    bright = mags_then[first, np.arange(len(transients))] < 20.8
    expected = transients[appeared & bright]
    assert len(expected) >= 5
    assert all(s.limiting_mag > 22.0 for s in lists)
    objects = survey["objects"]
    index, distance = _nearest_object(objects, expected["ra"], expected["dec"])
    assert np.all(distance < 0.5)
    for k, when in zip(index, first[appeared & bright]):
        assert objects[k].is_new and objects[k].new_significance >= 20
        assert objects[k].first_mjd == pytest.approx(mjds[when])
    # Few false alarms: flagged objects with no transient of the truth within 1 arcsec.
    flagged = [o for o in objects if o.is_new]
    real = truth[truth["variability"] == "transient"]
    false = [o for o in flagged
             if np.min(separation_arcsec(real["ra"], real["dec"], o.ra, o.dec)) > 1.0]
    assert len(false) <= 0.005 * len(objects)


def test_running_statistics_equal_a_batch_recomputation(survey):
    checked = 0
    for obj in survey["objects"]:
        if obj.n_detections < 5:
            continue
        curve = obj.lightcurve()
        assert len(curve) == obj.n_detections
        clean = (curve["flags"] & PHOTOMETRY_FLAGS) == 0
        zeropoint_error = [targets.CalibratedExposure.load(int(e)).zeropoint_error
                           for e in curve["exposure"][clean]]
        errors = flux_calibration_error(curve["flux"][clean], curve["flux_err"][clean],
                                        np.array(zeropoint_error))
        v, eta = variability_indices(curve["flux"][clean], errors)
        phot = obj.photometry()["r"]
        assert phot.n == clean.sum()
        assert phot.v == pytest.approx(v, rel=1e-9, abs=1e-12)
        assert phot.eta == pytest.approx(eta, rel=1e-9, abs=1e-12)
        assert (obj.v, obj.eta) == (phot.v, phot.eta)
        assert np.all(np.diff(curve["mjd"]) > 0)
        checked += 1
        if checked == 200:
            break
    assert checked == 200


def test_lightcurves_name_their_exposures(survey):
    obj = max(survey["objects"], key=lambda o: o.n_detections)
    curve = obj.lightcurve()
    exposures = {s.object_id: s.exposure.object_id for s in survey["lists"]}
    assert list(curve["exposure"]) == [exposures[s] for s in curve["sourcelist"]]
    assert set(curve["filter"]) == {"r"}
