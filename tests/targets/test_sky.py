"""Cone searches in the database (the zones index) equal a brute-force selection,
across RA 0/360 and at the poles, on both databases."""

import numpy as np
import pytest

from persistence import current_database, insert_many
from targets import Source
from targets.imaging.skymatch import cone_mask
from targets.sky import sky_columns


@pytest.fixture
def sky(db):
    rng = np.random.default_rng(3)
    n = 4000
    ra = np.concatenate([rng.uniform(0, 360, n // 4), rng.uniform(-2, 2, n // 4) % 360,
                         rng.uniform(0, 360, n // 4), rng.uniform(100, 104, n // 4)])
    dec = np.concatenate([rng.uniform(89.0, 90.0, n // 4), rng.uniform(-1, 1, n // 4),
                          rng.uniform(-90.0, -89.5, n // 4), rng.uniform(-30, -29, n // 4)])
    columns = {"ra": ra, "dec": dec, "mag": rng.uniform(15, 25, n), **sky_columns(ra, dec)}
    with current_database().transaction() as conn:
        insert_many(Source, columns, connection=conn)
    return Source.all().columns("ra", "dec", "mag")


@pytest.mark.parametrize("ra, dec, radius", [
    (0.0, 0.0, 1.0), (359.5, 0.5, 0.7), (0.2, -0.3, 0.01),   # across RA 0/360
    (123.0, 89.9, 0.5), (300.0, 90.0, 0.2), (10.0, -89.8, 0.4),  # the poles
    (102.0, -29.5, 0.3), (102.0, -29.5, 2 / 3600),           # an ordinary field
    (50.0, 10.0, 0.5),                                       # nothing there
])
def test_cone_equals_brute_force(sky, ra, dec, radius):
    expected = sky["object_id"][cone_mask(sky["ra"], sky["dec"], ra, dec, radius)]
    found = Source.cone(ra, dec, radius).columns()["object_id"]
    assert sorted(found.tolist()) == sorted(expected.tolist())
    combined = ((Source.mag < 20) & Source.cone(ra, dec, radius)).columns("mag")
    assert np.all(combined["mag"] < 20)
    assert len(combined["object_id"]) == np.count_nonzero(
        cone_mask(sky["ra"], sky["dec"], ra, dec, radius) & (sky["mag"] < 20))


def test_cone_refuses_impossible_positions(db):
    with pytest.raises(ValueError, match="declination must be in"):
        Source.cone(10.0, 95.0, 1.0)
