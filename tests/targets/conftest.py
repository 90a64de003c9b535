"""Fixtures of the imaging tests: one small simulated night, and a store to ingest it."""

import pytest

import dataserver
import targets
from targets.simulator import simulate

NIGHT = dict(nights=1, chips=2, size=(512, 512), seed=11, fields=1, dithers=2)
"""A small night: 2 chips of 512 x 512, 10 biases, 7 flats in g and r, 4 exposures."""


@pytest.fixture(scope="session")
def simulated_night(tmp_path_factory):
    """The raw files, truth and reference catalogue of `NIGHT` (made once)."""
    return simulate(tmp_path_factory.mktemp("night"), **NIGHT)


@pytest.fixture
def store(db, tmp_path):
    """An empty database (both backends) and data store."""
    targets.set_data_client(dataserver.Client(tmp_path / "files"))
    yield db
    targets.set_data_client(None)
