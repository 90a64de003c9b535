"""Files on a local directory, by global filename.

Layout under the root: each file at ``ab/cd/<name>`` (``ab/cd`` from `names.shard`),
its record ``ab/cd/.<name>.json`` (size, checksum, when stored) beside it, uploads in
progress in ``.tmp/``. A file becomes visible under its name only by a rename, after
its bytes and its record are on disk, so a crash never leaves a partial file under a
name. Stored files are read-only and never overwritten.
"""

import contextlib
import dataclasses
import datetime
import fcntl
import fnmatch
import json
import os
import tempfile
import time
from pathlib import Path

from .checksum import ALGORITHM, CHUNK_SIZE, file_checksum, new_hasher, split_checksum
from .errors import (ChecksumMismatchError, ConflictError, DataServerError,
                     DeleteRefusedError, MissingFileError)
from .names import shard, validate_name

__all__ = ["FileInfo", "Storage"]

TEMPORARY_MAX_AGE = 24 * 3600
"""Seconds after which an upload left in ``.tmp/`` (by a killed process) is swept."""


WRITEBACK_STEP = 8 << 20
"""Bytes between the writer's requests to the kernel to start writing to disk."""


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """What a store knows about one file."""

    name: str
    size: int
    checksum: str
    stored: str
    """When the file was stored, ISO 8601 UTC."""

    def to_json(self):
        return dataclasses.asdict(self)


class Storage:
    """A directory of files addressed by global filename.

    Parameters
    ----------
    root : `str` or `os.PathLike`
        The directory; made if missing.
    deletable : sequence of `str`
        Shell-style patterns of the names that `delete` may remove (a user's sandbox
        products). None by default: raw data and shared products are never deleted.
    durable : `bool`
        Whether a stored file is flushed to the disk (fsync) before it becomes
        visible, so a power cut cannot lose it. Only a cache, whose files are checked
        on every use and can be fetched again, turns this off.
    """

    def __init__(self, root, *, deletable=(), durable=True):
        self.root = Path(root).absolute()
        self.deletable = tuple(deletable)
        self.durable = durable
        self._tmp = self.root / ".tmp"
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataServerError(f"cannot create the data store {self.root}: "
                                  f"{err.strerror or err}; choose a directory you can write") from err

    def __repr__(self):
        return f"Storage({str(self.root)!r})"

    # -- reading ------------------------------------------------------------------

    def path(self, name):
        """The path a file of this name has (or would have) on disk."""
        a, b = shard(validate_name(name))
        return self.root / a / b / name

    def _record_path(self, name):
        a, b = shard(name)
        return self.root / a / b / f".{name}.json"

    def exists(self, name):
        """Whether a file of this name is stored."""
        return self.path(name).is_file()

    def info(self, name):
        """Return the `FileInfo` of a stored file; raise `MissingFileError` if none."""
        path = self.path(name)
        try:
            record = json.loads(self._record_path(name).read_text())
        except FileNotFoundError:
            raise MissingFileError(f"{name!r} is not stored in {self.root}") from None
        if not path.is_file():
            raise MissingFileError(f"{name!r} is not stored in {self.root}")
        return FileInfo(**record)

    def open(self, name):
        """Open a stored file for binary reading."""
        try:
            return open(self.path(name), "rb", buffering=0)
        except FileNotFoundError:
            raise MissingFileError(f"{name!r} is not stored in {self.root}") from None

    def verify(self, name, expected=None):
        """Hash a stored file and return its `FileInfo` if it matches its record.

        Raises
        ------
        ChecksumMismatchError
            Raised if the bytes on disk do not match the recorded checksum, or
            ``expected`` (a checksum from elsewhere, e.g. the database) if given.
        """
        info = self.info(name)
        for wanted in dict.fromkeys(filter(None, (info.checksum, expected))):
            actual = file_checksum(self.path(name), split_checksum(wanted)[0])
            if actual != wanted:
                raise ChecksumMismatchError(
                    f"{name!r} in {self.root} is corrupt: its checksum is {actual} "
                    f"but {wanted} was recorded", name=name, expected=wanted,
                    actual=actual, where=str(self.root))
        return info

    def list(self, prefix=""):
        """Return the sorted names of the stored files that start with ``prefix``."""
        names = []
        for first in _subdirectories(self.root):
            for second in _subdirectories(first):
                with os.scandir(second) as entries:
                    names.extend(e.name for e in entries
                                 if not e.name.startswith(".") and e.name.startswith(prefix))
        return sorted(names)

    # -- writing ------------------------------------------------------------------

    def writer(self, name, checksum=None):
        """Return a `Writer` that streams a new file into the store.

        Write the bytes with ``write()``, then call ``commit()``; leaving the ``with``
        block without committing throws the bytes away.

        Parameters
        ----------
        name : `str`
            The global filename.
        checksum : `str`, optional
            The checksum the writer's bytes must have (e.g. as sent by a client).
        """
        return Writer(self, validate_name(name), checksum)

    def store(self, path, name, checksum=None):
        """Copy the file at ``path`` into the store under ``name``.

        Returns
        -------
        info : `FileInfo`
            The stored file's record.
        created : `bool`
            False if the same content was already stored under the name.

        Raises
        ------
        ConflictError
            Raised if the name is stored with different content.
        """
        with self.writer(name, checksum) as writer, open(path, "rb", buffering=0) as f:
            buffer = bytearray(CHUNK_SIZE)
            view = memoryview(buffer)
            while n := f.readinto(buffer):
                writer.write(view[:n])
            return writer.commit()

    def delete(self, name):
        """Delete a stored file whose name matches one of the `deletable` patterns.

        Raises
        ------
        DeleteRefusedError
            Raised if the name matches none of the patterns.
        MissingFileError
            Raised if no file of this name is stored.
        """
        validate_name(name)
        if not any(fnmatch.fnmatchcase(name, p) for p in self.deletable):
            raise DeleteRefusedError(
                f"{name!r} may not be deleted from {self.root}: only names matching "
                f"{list(self.deletable) or 'no pattern'} can be (sandbox products), "
                "never raw data")
        self._remove(name)

    def _remove(self, name):
        with self._locked():
            try:
                self.path(name).unlink()
            except FileNotFoundError:
                raise MissingFileError(f"{name!r} is not stored in {self.root}") from None
            with contextlib.suppress(FileNotFoundError):
                self._record_path(name).unlink()

    def sweep_temporary(self, max_age=TEMPORARY_MAX_AGE):
        """Remove uploads older than ``max_age`` seconds left by killed processes."""
        cutoff = time.time() - max_age
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)

    @contextlib.contextmanager
    def _locked(self):
        """Serialise the check-and-rename of commits and deletes, across processes."""
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class Writer:
    """A file being written into a `Storage`; see `Storage.writer`."""

    def __init__(self, storage, name, checksum=None):
        self.storage, self.name = storage, name
        fd, tmp = tempfile.mkstemp(dir=storage._tmp, prefix=".upload-")
        self._tmp_path = Path(tmp)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.restart(checksum)

    def restart(self, checksum=None):
        """Forget the bytes written so far (to try a transfer again), and expect
        ``checksum`` of the bytes written from now on."""
        if self._file.tell():
            # Only when there is something to forget: on ext4 a truncated file is
            # flagged for early block allocation, which slows every later write 4-fold.
            self._file.seek(0)
            self._file.truncate()
        self.size, self._flushed, self.expected = 0, 0, checksum
        algorithms = [ALGORITHM] + ([split_checksum(checksum)[0]] if checksum else [])
        self._hashers = {a: new_hasher(a) for a in dict.fromkeys(algorithms)}

    def checksum(self, algorithm=ALGORITHM):
        """The checksum of the bytes written so far, by ``algorithm`` (the default or
        that of the expected checksum)."""
        return f"{algorithm}:{self._hashers[algorithm].hexdigest()}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.abort()

    def write(self, data):
        """Append ``data`` (bytes-like) to the file."""
        for hasher in self._hashers.values():
            hasher.update(data)
        view = memoryview(data)
        while view:
            view = view[self._file.write(view):]
        self.size += len(data)
        if self.storage.durable and self.size - self._flushed >= WRITEBACK_STEP:
            self._start_writeback()

    def _start_writeback(self):
        """Have the kernel start writing the bytes so far to disk, without waiting, so
        that the fsync at commit finds little left to do (Linux; elsewhere a no-op)."""
        if hasattr(os, "sync_file_range"):
            os.sync_file_range(self._file.fileno(), self._flushed, self.size - self._flushed,
                               os.SYNC_FILE_RANGE_WRITE)
        self._flushed = self.size

    def abort(self):
        """Throw the bytes away; nothing becomes visible. Safe to call twice."""
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp_path.unlink()

    def commit(self):
        """Make the file visible under its name; see `Storage.store` for the result."""
        storage, name = self.storage, self.name
        checksum = self.checksum()
        try:
            actual = self.expected and self.checksum(split_checksum(self.expected)[0])
            if actual != self.expected:
                raise ChecksumMismatchError(
                    f"the bytes received for {name!r} have checksum {actual}, not the "
                    f"{self.expected} the sender declared; the transfer was damaged or "
                    "the file changed while being sent: send it again",
                    name=name, expected=self.expected, actual=actual, where=str(storage.root))
            os.fchmod(self._file.fileno(), 0o444)
            if storage.durable:
                os.fsync(self._file.fileno())
            self._file.close()
            now = datetime.datetime.now(datetime.timezone.utc)
            info = FileInfo(name=name, size=self.size, checksum=checksum,
                            stored=now.isoformat(timespec="seconds").replace("+00:00", "Z"))
            final = storage.path(name)
            final.parent.mkdir(parents=True, exist_ok=True)
            with storage._locked():
                if final.is_file():
                    existing = storage.info(name)
                    if existing.checksum != checksum:
                        raise ConflictError(
                            f"{name!r} is already stored in {storage.root} with different "
                            f"content ({existing.checksum}, not {checksum}); stored files are "
                            "never replaced: give the new file a new name")
                    return existing, False
                _write_record(storage._record_path(name), info, storage.durable)
                os.rename(self._tmp_path, final)
                if storage.durable:
                    _fsync_directory(final.parent)
            return info, True
        finally:
            self.abort()


def _write_record(path, info, durable):
    """Write a file's record atomically: a reader sees the old record or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(info.to_json(), f)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.rename(tmp, path)


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _subdirectories(path):
    with os.scandir(path) as entries:
        return sorted(Path(e.path) for e in entries
                      if len(e.name) == 2 and not e.name.startswith(".") and e.is_dir())
