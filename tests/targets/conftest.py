"""Fixtures of the imaging tests: a store to ingest the simulated night into."""

import pytest

import dataserver
import targets


@pytest.fixture
def store(db, tmp_path):
    """An empty database (both backends) and data store."""
    targets.set_data_client(dataserver.Client(tmp_path / "files"))
    yield db
    targets.set_data_client(None)
