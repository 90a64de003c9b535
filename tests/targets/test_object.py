"""Object association on both databases, with source lists written as rows: running
sums against a batch recomputation, the resolution of ambiguous pairs, RA 0/360 and the
poles, the new-object flag, and all-or-nothing association of a list."""

import numpy as np
import pytest

from persistence import CommitError, insert_many
from targets import Association, Object, ObjectPhotometry, Source, SourceList, associate
from targets.imaging.association import variability_indices
from targets.object import AssociationParameters
from targets.raw import RawScienceFrame
from targets.sky import sky_columns

ARCSEC = 1 / 3600


def synthetic_list(mjd, ra, dec, *, flux=None, flux_err=None, flags=None, error=0.05,
                   filter="r", limiting_mag=24.0, half_width=60.0):
    """A committed source list (no file: its rows only) of sources at ``ra``, ``dec``
    with position errors ``error`` arcsec, footprint a square of ``half_width`` arcsec
    about the first source."""
    ra, dec = np.atleast_1d(np.asarray(ra, float)) % 360, np.atleast_1d(np.asarray(dec, float))
    n = ra.size
    flux = np.full(n, 100.0) if flux is None else np.asarray(flux, float)
    flux_err = np.full(n, 1.0) if flux_err is None else np.asarray(flux_err, float)
    h = half_width * ARCSEC
    c = np.cos(np.radians(dec[0]))
    footprint = [ra[0] - h / c, dec[0] - h, ra[0] + h / c, dec[0] - h, ra[0] + h / c,
                 dec[0] + h, ra[0] - h / c, dec[0] + h]
    from persistence import current_database

    with current_database().transaction() as connection:
        list_id = insert_many(SourceList, {
            "filter": [filter], "mjd": [mjd], "n_sources": [n], "ra": [ra[0]],
            "dec": [dec[0]], "footprint": [[float(v) for v in footprint]],
            "limiting_mag": [limiting_mag]}, connection=connection)[0]
        insert_many(Source, {
            "sourcelist": [list_id] * n, "number": np.arange(1, n + 1), "mjd": [mjd] * n,
            "filter": [filter] * n, "ra": ra, "dec": dec, "ra_err": np.full(n, error),
            "dec_err": np.full(n, error), "flux": flux, "flux_err": flux_err,
            "mag_aper": 23.9 - 2.5 * np.log10(flux), "snr": flux / flux_err,
            "flags": np.zeros(n, int) if flags is None else flags,
            **sky_columns(ra, dec)}, connection=connection)
    return SourceList.load(int(list_id))


NO_SYSTEMATIC = {"systematic_error": 1e-6}


def test_running_sums_equal_a_batch_recomputation(db):
    rng = np.random.default_rng(3)
    truth_ra, truth_dec = 150.0 + rng.uniform(0, 0.01, 20), 2.0 + rng.uniform(0, 0.01, 20)
    fluxes, errors = [], []
    for epoch in range(10):
        flux = rng.normal(1000.0, 30.0, 20) * np.where(np.arange(20) < 5, 1 + 0.3 * np.sin(
            epoch), 1.0)
        err = rng.uniform(5.0, 15.0, 20)
        record = associate(synthetic_list(
            60000.0 + epoch, truth_ra + rng.normal(0, 0.05, 20) * ARCSEC / np.cos(
                np.radians(2.0)), truth_dec + rng.normal(0, 0.05, 20) * ARCSEC,
            flux=flux, flux_err=err), pars=NO_SYSTEMATIC)
        assert record.n_matched == (0 if epoch == 0 else 20)
        fluxes.append(flux)
        errors.append(err)
    fluxes, errors = np.array(fluxes), np.array(errors)
    objects = sorted(Object.cone(150.005, 2.005, 60 * ARCSEC), key=lambda o: o.object_id)
    assert len(objects) == 20 and all(o.n_detections == 10 for o in objects)
    for k, obj in enumerate(objects):
        v, eta = variability_indices(fluxes[:, k], errors[:, k])
        assert obj.v == pytest.approx(v, rel=1e-9, abs=1e-12)
        assert obj.eta == pytest.approx(eta, rel=1e-9, abs=1e-12)
        phot = obj.photometry()["r"]
        w = 1 / errors[:, k] ** 2
        assert phot.flux == pytest.approx(np.sum(w * fluxes[:, k]) / np.sum(w), rel=1e-9)
        assert phot.n == 10
        curve = obj.lightcurve()
        assert list(curve["mjd"]) == [60000.0 + e for e in range(10)]
        assert np.allclose(curve["flux"], fluxes[:, k])
        # The mean position is the truth to the errors (0.05 arcsec / sqrt(10)).
        assert abs(obj.ra - truth_ra[k]) * 3600 * np.cos(np.radians(2)) < 0.08
        assert abs(obj.dec - truth_dec[k]) * 3600 < 0.08
        assert obj.ra_err == pytest.approx(0.05 / np.sqrt(10), rel=1e-6)
    # The five stars made variable are found; the constant ones are not.
    variable = (Object.eta > 2) & (Object.v > 0.1)
    assert sorted(o.object_id for o in variable) == [o.object_id for o in objects[:5]]


def test_a_flux_with_masked_pixels_stays_in_the_light_curve_but_not_the_photometry(db):
    """A saturated core or a bad column in the aperture (sep's flag 32) makes a flux
    wrong by an unknown amount: counted, it made a constant star the most variable."""
    flux = [1000.0, 1010.0, 150.0, 995.0, 1005.0]
    flags = [0, 0, 0x20 | 0x1, 0, 0]
    for epoch, (f, flag) in enumerate(zip(flux, flags)):
        associate(synthetic_list(60000.0 + epoch, 150.0, 2.0, flux=[f], flux_err=[10.0],
                                 flags=[flag]))
    (obj,) = Object.all()
    curve = obj.lightcurve()
    assert obj.n_detections == len(curve) == 5
    assert list(curve["flags"]) == flags
    phot = obj.photometry()["r"]
    clean = np.array(flags) & 0x20 == 0
    v, eta = variability_indices(np.array(flux)[clean], np.full(4, 10.0))
    assert phot.n == 4
    assert (phot.v, phot.eta) == (pytest.approx(v, rel=1e-9), pytest.approx(eta, rel=1e-9))
    assert obj.eta < 1, "a constant star"


def test_the_calibration_error_enters_the_photometry_not_the_light_curve(db):
    """A bright constant star measured to 0.1% in exposures calibrated to 2%: without the
    zeropoint's error its eta would be in the hundreds."""
    rng = np.random.default_rng(5)
    flux = 1e5 * (1 + rng.normal(0, 0.02, 8))
    for epoch, f in enumerate(flux):
        associate(synthetic_list(60000.0 + epoch, 150.0, 2.0, flux=[f], flux_err=[100.0]),
                  pars={"calibration_error": 0.02})
    (obj,) = Object.all()
    assert np.all(obj.lightcurve()["flux_err"] == 100.0), "the measurements' own errors"
    errors = np.hypot(100.0, 0.4 * np.log(10) * 0.02 * flux)
    v, eta = variability_indices(flux, errors)
    assert obj.eta == pytest.approx(eta, rel=1e-9) and obj.eta < 3
    assert variability_indices(flux, np.full(8, 100.0))[1] > 100


def test_each_list_is_associated_once(db):
    source_list = synthetic_list(60000.0, [10.0, 10.001], [20.0, 20.0])
    first = associate(source_list)
    again = associate(source_list)
    assert again.object_id == first.object_id
    assert first.parameters.as_dict() == AssociationParameters.in_force().as_dict()
    assert Object.cone(10.0, 20.0, 0.01).count() == 2
    assert (Association.sourcelist == source_list).count() == 1


def test_ambiguous_pairs_resolve_one_to_one_nearest_first(db):
    # Two objects 1 arcsec apart, errors large enough that both gates overlap.
    pars = {"systematic_error": 0.3, "max_separation": 5.0}
    associate(synthetic_list(60000.0, [50.0, 50.0 + 1 * ARCSEC], [0.0, 0.0]), pars=pars)
    a, b = sorted(Object.cone(50.0, 0.0, 0.01), key=lambda o: o.object_id)
    # One-to-many: three sources near object a; the nearest joins it, and b takes the
    # source nearest to it; the third starts an object of its own.
    associate(synthetic_list(60001.0, [50.0 + 0.1 * ARCSEC, 50.0 - 0.3 * ARCSEC,
                                       50.0 + 0.8 * ARCSEC], [0.0, 0.0, 0.0]), pars=pars)
    a, b = Object.load(a.object_id), Object.load(b.object_id)
    assert (a.n_detections, b.n_detections) == (2, 2)
    assert Object.cone(50.0, 0.0, 0.01).count() == 3
    # Many-to-one, equidistant: one source exactly midway between two objects (offsets
    # of 2**-12 degrees are exact in binary): the tie breaks towards the older object,
    # every time.
    delta = 2.0 ** -12
    associate(synthetic_list(60003.0, [60.0 - delta, 60.0 + delta], [0.0, 0.0]), pars=pars)
    older, younger = sorted(Object.cone(60.0, 0.0, 0.01), key=lambda o: o.object_id)
    associate(synthetic_list(60004.0, [60.0], [0.0]), pars=pars)
    assert [Object.load(o.object_id).n_detections for o in (older, younger)] == [2, 1]


@pytest.mark.parametrize("ra, dec", [(359.99995, 10.0), (0.0, 89.99995), (180.0, -89.99999)])
def test_association_across_ra_zero_and_at_the_poles(db, ra, dec):
    rng = np.random.default_rng(7)
    for epoch in range(3):
        # Moved by up to 0.1 arcsec in any direction: across 0/360 and over the pole.
        angle, distance = rng.uniform(0, 2 * np.pi), 0.1 * ARCSEC
        east, north = distance * np.cos(angle), distance * np.sin(angle)
        from targets.imaging.skymatch import from_tangent_plane

        r, d = from_tangent_plane(east, north, ra, dec)
        associate(synthetic_list(60000.0 + epoch, [r], [d]))
    (obj,) = Object.cone(ra, dec, 2 * ARCSEC)
    assert obj.n_detections == 3


def test_new_objects_are_flagged_where_earlier_lists_were_deep_enough(db):
    centre = (120.0, -30.0)
    associate(synthetic_list(60000.0, [centre[0]], [centre[1]], limiting_mag=22.0))
    c = np.cos(np.radians(-30.0))
    offsets = [0.0, 20.0, 30.0, 120.0, 40.0, 50.0, 1.5]  # arcsec east
    mags = np.array([20.0, 18.9, 21.9, 18.9, 18.9, 18.9, 18.9])
    flux = 10 ** (-0.4 * (mags - 23.9))
    snr = np.array([50, 50, 50, 50, 50, 10, 50])
    flags = [0, 0, 0, 0, 1, 0, 0]
    ra = [centre[0] + dx * ARCSEC / c for dx in offsets]
    record = associate(synthetic_list(60001.0, ra, [centre[1]] * len(ra), flux=flux,
                                      flux_err=flux / snr, flags=flags, half_width=200.0))
    # Only the clean, significant, isolated source at 18.9 inside the earlier footprint
    # is new: not the one at 21.9 (within the 1 mag margin of the earlier limit), the
    # one outside the earlier footprint, the blended one, the one at S/N 10, nor the one
    # 1.5 arcsec from the earlier object.
    assert (record.n_matched, record.n_new, record.n_flagged_new) == (1, 6, 1)
    (new,) = Object.is_new == True  # noqa: E712
    assert new.ra == pytest.approx(ra[1]) and new.new_significance == pytest.approx(50)
    # A different filter's earlier lists do not count.
    record = associate(synthetic_list(60002.0, [centre[0] + 80 * ARCSEC / c],
                                      [centre[1]], filter="g"))
    assert record.n_flagged_new == 0


def test_an_interrupted_association_leaves_the_catalogue_as_it_was(db, monkeypatch):
    associate(synthetic_list(60000.0, [30.0, 30.001], [5.0, 5.0]))
    second = synthetic_list(60001.0, [30.0, 30.001, 30.002], [5.0, 5.0, 5.0])
    before = Object.cone(30.0, 5.0, 0.01).columns("n_detections", "ra", "w_xi")

    def fail(*args, **kwargs):
        raise CommitError("the connection dropped")

    monkeypatch.setattr("targets.object.insert_links", fail)
    with pytest.raises(CommitError):
        associate(second)
    after = Object.cone(30.0, 5.0, 0.01).columns("n_detections", "ra", "w_xi")
    assert {k: v.tolist() for k, v in before.items()} == {k: v.tolist()
                                                          for k, v in after.items()}
    assert (ObjectPhotometry.n == 2).count() == 0
    assert (Association.sourcelist == second).count() == 0
    monkeypatch.undo()
    assert associate(second).n_matched == 2
    assert Object.cone(30.0, 5.0, 0.01).count() == 3


def test_nothing_observed_there_gives_no_objects(db):
    assert RawScienceFrame.covering(10.0, 10.0, 0.01) == []
    assert Object.get(ra=10.0, dec=10.0, radius=0.01) == []
