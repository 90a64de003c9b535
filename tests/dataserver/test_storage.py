"""Storage on a local directory: atomic, never overwritten, checked, by valid names only."""

import hashlib
import os
import stat
import time

import pytest

import dataserver
from dataserver import (ChecksumMismatchError, ConflictError, DeleteRefusedError,
                        InvalidNameError, MissingFileError, Storage, file_checksum)

NAME = "Raw-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits"


def make_file(path, content):
    path.write_bytes(content)
    return path


def leftovers(storage):
    """The uploads in progress (or abandoned) in the storage's ``.tmp``."""
    return sorted(os.listdir(storage.root / ".tmp"))


def test_store_and_read_back_round_trip(tmp_path):
    content = os.urandom(3 * (1 << 20) + 17)  # several chunks and a ragged end
    source = make_file(tmp_path / "source.fits", content)
    storage = Storage(tmp_path / "store")
    info, created = storage.store(source, NAME)
    assert created
    assert (info.name, info.size, info.checksum) == (NAME, len(content), file_checksum(source))
    assert info.checksum.startswith(dataserver.ALGORITHM + ":")
    assert storage.exists(NAME) and storage.info(NAME) == info
    assert storage.path(NAME).read_bytes() == content
    with storage.open(NAME) as f:
        assert f.read() == content
    assert storage.verify(NAME) == info
    assert storage.verify(NAME, expected=file_checksum(source, "sha256")) == info
    assert leftovers(storage) == []


def test_storing_identical_content_again_changes_nothing(tmp_path):
    """Storing is idempotent, so a client may retry an upload whose answer it lost."""
    storage = Storage(tmp_path / "store")
    first, created = storage.store(make_file(tmp_path / "a", b"same bytes"), NAME)
    before = os.stat(storage.path(NAME))
    again, created_again = storage.store(make_file(tmp_path / "b", b"same bytes"), NAME)
    assert created and not created_again
    assert again == first  # the same record, with the first store's time
    after = os.stat(storage.path(NAME))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert leftovers(storage) == []


def test_storing_different_content_under_a_stored_name_is_refused(tmp_path):
    storage = Storage(tmp_path / "store")
    original, _ = storage.store(make_file(tmp_path / "a", b"original"), NAME)
    with pytest.raises(ConflictError, match="never replaced"):
        storage.store(make_file(tmp_path / "b", b"impostor"), NAME)
    assert storage.path(NAME).read_bytes() == b"original"
    assert storage.info(NAME) == original
    assert storage.verify(NAME) == original
    assert leftovers(storage) == []


def test_stored_files_are_read_only_and_sharded_by_name_hash(tmp_path):
    """The layout is ``root/ab/cd/NAME`` with ``abcd`` the start of the SHA-256 of the
    name; other tools and older servers rely on it."""
    storage = Storage(tmp_path / "store")
    storage.store(make_file(tmp_path / "a", b"x" * 100), NAME)
    digest = hashlib.sha256(NAME.encode()).hexdigest()
    path = storage.root / digest[:2] / digest[2:4] / NAME
    assert storage.path(NAME) == path and path.is_file()
    # Permission bits, not a failed write: these tests may run as root.
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    assert (path.parent / f".{NAME}.json").is_file()
    assert sorted(p.name for p in storage.root.iterdir()) == [".lock", ".tmp", digest[:2]]


BAD_NAMES = {
    "empty": "",
    "dot-dot": "..",
    "parent": "../x",
    "dots-inside": "a..b",
    "slash": "a/b",
    "backslash": "a\\b",
    "hidden": ".hidden",
    "nul": "a\x00b",
    "newline": "a\nb",
    "percent-encoded": "a%2e%2e",
    "too-long": "x" * (dataserver.MAX_NAME_BYTES + 1),
    "too-long-in-utf8": "é" * (dataserver.MAX_NAME_BYTES // 2 + 1),
}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_bad_names_are_refused_and_create_nothing(tmp_path, name):
    """A name is one path component: anything that could escape the root or hide a
    file is refused before a byte is written."""
    source = make_file(tmp_path / "source", b"payload")
    storage = Storage(tmp_path / "store", deletable=["*"])
    for call in (lambda: storage.store(source, name), lambda: storage.writer(name),
                 lambda: storage.path(name), lambda: storage.exists(name),
                 lambda: storage.info(name), lambda: storage.delete(name),
                 lambda: dataserver.validate_name(name)):
        with pytest.raises(InvalidNameError):
            call()
    assert sorted(p.name for p in storage.root.iterdir()) == [".tmp"]
    assert leftovers(storage) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source", "store"]


def test_longest_allowed_name_is_stored(tmp_path):
    name = "x" * dataserver.MAX_NAME_BYTES
    storage = Storage(tmp_path / "store")
    storage.store(make_file(tmp_path / "a", b"long"), name)
    assert storage.list() == [name] and storage.verify(name).size == 4


def test_only_names_matching_deletable_patterns_are_deleted(tmp_path):
    """Raw data is never deleted; a user's sandbox products may be."""
    storage = Storage(tmp_path / "store", deletable=["Sandbox-*"])
    raw, _ = storage.store(make_file(tmp_path / "raw", b"raw data"), NAME)
    storage.store(make_file(tmp_path / "sandbox", b"mine"), "Sandbox-alice-1.fits")
    with pytest.raises(DeleteRefusedError, match="may not be deleted"):
        storage.delete(NAME)
    assert storage.verify(NAME) == raw
    assert storage.path(NAME).read_bytes() == b"raw data"
    storage.delete("Sandbox-alice-1.fits")
    assert not storage.exists("Sandbox-alice-1.fits")
    assert not storage.path("Sandbox-alice-1.fits").parent.joinpath(
        ".Sandbox-alice-1.fits.json").exists()
    with pytest.raises(MissingFileError):
        storage.info("Sandbox-alice-1.fits")
    with pytest.raises(MissingFileError):
        storage.delete("Sandbox-alice-1.fits")
    assert storage.list() == [NAME]


def test_nothing_is_deletable_by_default(tmp_path):
    storage = Storage(tmp_path / "store")
    storage.store(make_file(tmp_path / "a", b"a"), "Sandbox-alice-1.fits")
    with pytest.raises(DeleteRefusedError):
        storage.delete("Sandbox-alice-1.fits")
    assert storage.exists("Sandbox-alice-1.fits")


def test_list_gives_names_by_prefix_sorted(tmp_path):
    storage = Storage(tmp_path / "store")
    names = ["Cal-b", "Raw-2", "Cal-a", "Raw-10", "Cal-c", "Raw-1"]  # spread over shards
    for i, name in enumerate(names):
        storage.store(make_file(tmp_path / f"src{i}", name.encode()), name)
    assert storage.list() == sorted(names)
    assert storage.list("Cal-") == ["Cal-a", "Cal-b", "Cal-c"]
    assert storage.list("Raw-1") == ["Raw-1", "Raw-10"]
    assert storage.list("Nothing") == []


def test_verify_detects_a_corrupted_file(tmp_path):
    storage = Storage(tmp_path / "store")
    info, _ = storage.store(make_file(tmp_path / "a", b"good bytes" * 1000), NAME)
    path = storage.path(NAME)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(5000)
        byte = f.read(1)
        f.seek(5000)
        f.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ChecksumMismatchError) as caught:
        storage.verify(NAME)
    err = caught.value
    assert err.name == NAME and err.where == str(storage.root)
    assert err.expected == info.checksum
    assert err.actual == file_checksum(path) != info.checksum
    assert err.expected in str(err) and err.actual in str(err)


def test_verify_checks_an_expected_checksum_from_elsewhere(tmp_path):
    """The database's checksum is checked too, so a file swapped with its record is
    found."""
    storage = Storage(tmp_path / "store")
    storage.store(make_file(tmp_path / "a", b"stored"), NAME)
    other = file_checksum(make_file(tmp_path / "b", b"what the database recorded"))
    with pytest.raises(ChecksumMismatchError) as caught:
        storage.verify(NAME, expected=other)
    assert caught.value.expected == other


def test_aborted_writer_leaves_nothing(tmp_path):
    storage = Storage(tmp_path / "store")
    with storage.writer(NAME) as writer:
        writer.write(b"partial " * 1000)
        assert len(leftovers(storage)) == 1  # the bytes go to .tmp first
    assert leftovers(storage) == [] and not storage.exists(NAME)
    with pytest.raises(RuntimeError), storage.writer(NAME) as writer:
        writer.write(b"partial")
        raise RuntimeError("the sender went away")
    writer.abort()  # harmless twice
    assert leftovers(storage) == [] and not storage.exists(NAME)
    assert storage.list() == [] and not storage.path(NAME).parent.exists()


def test_writer_with_wrong_declared_checksum_stores_nothing(tmp_path):
    storage = Storage(tmp_path / "store")
    declared = file_checksum(make_file(tmp_path / "a", b"what was sent"))
    with storage.writer(NAME, declared) as writer:
        writer.write(b"what arrived")
        with pytest.raises(ChecksumMismatchError, match="send it again"):
            writer.commit()
    assert leftovers(storage) == [] and not storage.exists(NAME)


def test_sweep_temporary_removes_only_old_uploads(tmp_path):
    """Uploads left by a killed process are swept after a while; fresh ones, which may
    still be in progress, are kept."""
    storage = Storage(tmp_path / "store")
    old = storage.root / ".tmp" / ".upload-old"
    new = storage.root / ".tmp" / ".upload-new"
    old.write_bytes(b"left by a crash")
    new.write_bytes(b"in progress")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    storage.sweep_temporary()
    assert leftovers(storage) == [".upload-new"]
    storage.sweep_temporary(max_age=-1)  # everything is older than the future
    assert leftovers(storage) == []
