"""``samp.broadcast`` against a real SAMP hub (astropy's) started here, with a second
client standing in for TOPCAT and DS9: what it receives is what AWE holds."""

import time
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.utils.data import get_readable_fileobj
from astropy.utils.exceptions import AstropyDeprecationWarning

import targets
from awe import samp

from .conftest import connected

with warnings.catch_warnings():
    warnings.simplefilter("ignore", AstropyDeprecationWarning)  # for pyvo.samp, the same
    from astropy.samp import SAMPHubServer, SAMPIntegratedClient


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running SAMP hub, found through ``SAMP_HUB`` as the desktop tools find theirs."""
    lockfile = tmp_path / "samp-hub"
    server = SAMPHubServer(lockfile=str(lockfile), web_profile=False, addr="127.0.0.1")
    server.start(wait=False)
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{lockfile.as_uri()}")
    yield server
    samp.disconnect()
    server.stop()


@pytest.fixture
def viewer(hub):
    """A client of the hub that takes images and tables, as DS9 and TOPCAT do, and
    keeps what it is sent."""
    received = []
    client = SAMPIntegratedClient(name="viewer")
    client.connect()
    client.declare_metadata({"samp.name": "viewer"})
    for mtype in ("image.load.fits", "table.load.votable"):
        client.bind_receive_notification(
            mtype, lambda private_key, sender_id, mtype, params, extra: received.append(
                (mtype, params)))
    yield received
    client.disconnect()


def wait_for(received, count=1, seconds=10):
    deadline = time.monotonic() + seconds
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(received) >= count, "the viewer received nothing"
    return received[-1]


@pytest.fixture
def reduced(home_copy, monkeypatch):
    """A copy of the reduced night's database (a source list will be added), connected."""
    yield from connected(home_copy, monkeypatch)


def test_an_exposure_goes_to_the_viewer_as_its_fits_file(reduced, viewer):
    exposure = targets.CalibratedExposure.all().first()
    recipients = samp.broadcast(exposure)
    assert recipients == ["viewer"]
    mtype, params = wait_for(viewer)
    assert mtype == "image.load.fits"
    assert params["name"] == f"CalibratedExposure {exposure.object_id}"
    with fits.open(params["url"]) as sent, fits.open(exposure.retrieve()) as held:
        assert np.array_equal(sent[0].data, held[0].data, equal_nan=True)


def test_a_source_list_goes_to_the_viewer_as_a_votable(reduced, viewer):
    frame = targets.RawScienceFrame.all().first()
    source_list = targets.SourceList.get(raw=frame)
    samp.broadcast(source_list)
    mtype, params = wait_for(viewer)
    assert mtype == "table.load.votable"
    with get_readable_fileobj(params["url"], encoding="binary") as file:
        sent = Table.read(file, format="votable")
    held = source_list.table()
    assert len(sent) == len(held) == source_list.n_sources > 50
    assert np.allclose(sent["ra"], held["ra"], rtol=0, atol=1e-12)
    assert params["table-id"] == f"SourceList {source_list.object_id}"


def test_a_table_and_a_fits_path_are_sent_too(reduced, viewer, tmp_path):
    samp.broadcast(Table({"x": [1, 2, 3]}), name="mine")
    mtype, params = wait_for(viewer, 1)
    assert (mtype, params["name"]) == ("table.load.votable", "mine")
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.arange(12.0).reshape(3, 4)).writeto(path)
    samp.broadcast(path)
    mtype, params = wait_for(viewer, 2)
    assert (mtype, params["url"]) == ("image.load.fits", path.as_uri())


def test_without_a_hub_the_error_says_what_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{(tmp_path / 'none').as_uri()}")
    samp.disconnect()
    with pytest.raises(ConnectionError, match="no SAMP hub is running: start TOPCAT or DS9"):
        samp.broadcast(Table({"x": [1]}))


def test_what_cannot_be_broadcast_is_named(reduced):
    with pytest.raises(TypeError, match="cannot broadcast 42"):
        samp.broadcast(42)
