"""DataObject: a persistent object whose file lives on the data store, on both databases."""

import datetime

import pytest

import dataserver
import persistence
import targets
from persistence import DBObject, persistent
from targets import DataObject, global_filename


class Detector(DBObject):
    name = persistent("Detector name", str, "")


class TestFrame(DataObject):
    __test__ = False  # a persistent class, not a pytest test class
    filename_prefix = "Test"
    instrument = persistent("Instrument", str, "")
    filter = persistent("Filter name", str, "")
    chip = persistent("Detector", Detector, None)
    date_obs = persistent("Start of the exposure (UTC)", datetime.datetime, None)


WHEN = datetime.datetime(2024, 3, 17, 1, 2, 3)


@pytest.fixture
def store(tmp_path):
    """A local-directory data store, made current for DataObjects."""
    client = dataserver.Client(tmp_path / "files")
    targets.set_data_client(client)
    yield client
    targets.set_data_client(None)


@pytest.fixture
def fits_file(tmp_path):
    path = tmp_path / "frame.fits"
    path.write_bytes(b"SIMPLE  =                    T" + bytes(range(256)) * 40)
    return path


def new_frame():
    return TestFrame(instrument="SIM", filter="r", chip=Detector(name="ccd50"), date_obs=WHEN)


def test_global_filename_follows_the_product():
    name = global_filename("Cal", instrument="SIM", filter="r", chip="ccd50", time=WHEN,
                           checksum="blake3:1a2b3c4d5e6f")
    assert name == "Cal-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits"


def test_global_filename_leaves_out_missing_parts_and_replaces_bad_characters():
    name = global_filename("Raw", instrument="My Cam/2", checksum="sha256:00ff00ff99",
                           suffix=".fits.fz")
    assert name == "Raw-My_Cam_2-00ff00ff.fits.fz"
    dataserver.validate_name(name)


def test_store_records_name_size_and_checksum(db, store, fits_file):
    frame = new_frame()
    name = frame.store(fits_file)
    checksum = dataserver.file_checksum(fits_file)
    assert name == f"Test-SIM-r-ccd50-2024-03-17T01:02:03-{checksum.split(':')[1][:8]}.fits"
    assert (frame.filename, frame.file_size, frame.checksum) == (
        name, fits_file.stat().st_size, checksum)
    assert frame.retrieve().read_bytes() == fits_file.read_bytes()


def test_committed_object_retrieves_its_file_after_reloading(db, store, fits_file):
    frame = new_frame()
    frame.store(fits_file)
    frame.commit()
    again = TestFrame.load(frame.object_id)
    assert again is not frame
    assert again.checksum == frame.checksum
    assert again.retrieve().read_bytes() == fits_file.read_bytes()


def test_retrieve_to_dest_gives_a_writable_copy(db, store, fits_file, tmp_path):
    frame = new_frame()
    frame.store(fits_file)
    copy = frame.retrieve(tmp_path / "mine.fits")
    with open(copy, "ab") as f:
        f.write(b"edited")
    assert frame.retrieve().read_bytes() == fits_file.read_bytes()


def test_commit_refuses_an_object_whose_file_was_never_stored(db, store):
    frame = new_frame()
    with pytest.raises(persistence.CommitError, match="never stored.*store\\(path\\)"):
        frame.commit()
    assert not frame.is_committed
    assert len(TestFrame.all()) == 0
    assert len(Detector.all()) == 0  # the referenced new object was not written either


def test_commit_of_a_graph_with_one_unstored_object_writes_nothing(db, store, fits_file):
    stored, unstored = new_frame(), new_frame()
    stored.store(fits_file)
    with pytest.raises(persistence.CommitError, match="never stored"):
        persistence.commit_all([stored, unstored])
    assert len(TestFrame.all()) == 0


def test_commit_refuses_a_file_missing_from_the_store(db, store):
    frame = new_frame()
    frame.filename = "Test-never-uploaded.fits"
    frame.checksum = "blake3:" + "0" * 64
    with pytest.raises(persistence.CommitError, match="not on the data store"):
        frame.commit()


def test_commit_refuses_a_checksum_that_differs_from_the_store(db, store, fits_file):
    frame = new_frame()
    frame.store(fits_file)
    frame.checksum = "blake3:" + "0" * 64
    with pytest.raises(persistence.CommitError, match="with checksum"):
        frame.commit()


def test_committed_object_cannot_store_another_file(db, store, fits_file):
    frame = new_frame()
    frame.store(fits_file)
    frame.commit()
    with pytest.raises(persistence.ImmutableObjectError, match="cannot change"):
        frame.store(fits_file)


def test_same_content_twice_shares_one_file(db, store, fits_file):
    first, second = new_frame(), new_frame()
    assert first.store(fits_file) == second.store(fits_file)
    persistence.commit_all([first, second])
    assert store.list("Test-") == [first.filename]


def test_retrieve_detects_a_database_checksum_that_differs(db, store, fits_file):
    frame = new_frame()
    frame.store(fits_file)
    frame.checksum = "blake3:" + "f" * 64
    with pytest.raises(dataserver.ChecksumMismatchError, match=frame.filename):
        frame.retrieve()


def test_retrieve_without_a_file_says_so(store):
    with pytest.raises(dataserver.MissingFileError, match="store\\(path\\)"):
        new_frame().retrieve()


def test_no_data_store_configured_names_the_remedy(fits_file):
    targets.set_data_client(None)
    with pytest.raises(dataserver.DataServerError, match="awe.connect"):
        new_frame().store(fits_file)
