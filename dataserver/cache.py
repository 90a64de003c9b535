"""The client's bounded local cache of retrieved files, least recently used out first."""

import contextlib
import os

from .errors import ChecksumMismatchError, MissingFileError
from .storage import Storage

__all__ = ["DEFAULT_CACHE_SIZE", "Cache"]

DEFAULT_CACHE_SIZE = 10 * 1024**3
"""Bytes a cache may hold unless told otherwise: 10 GiB."""


class Cache:
    """Retrieved files, kept as a `Storage` so each has its checksum recorded.

    A file's last use is the modification time of its record, touched on every hit;
    after a file is added, the least recently used others are evicted until the cache
    is within ``max_bytes``. The file just added is never evicted by its own
    admission, so a file larger than the cache can still be retrieved.

    Parameters
    ----------
    root : `str` or `os.PathLike`
        The cache directory; made if missing.
    max_bytes : `int`
        The size limit.
    """

    def __init__(self, root, max_bytes=DEFAULT_CACHE_SIZE):
        self.storage = Storage(root, deletable=("*",), durable=False)
        self.max_bytes = int(max_bytes)

    def __repr__(self):
        return f"Cache({str(self.storage.root)!r}, max_bytes={self.max_bytes})"

    def lookup(self, name, expected=None):
        """Return the path of a verified cached copy of ``name``, or None.

        A copy whose bytes do not match its recorded checksum (or ``expected``) is
        discarded, so the caller fetches it again.
        """
        try:
            self.storage.verify(name, expected)
        except MissingFileError:
            return None
        except ChecksumMismatchError:
            self.discard(name)
            return None
        self._touch(name)
        return self.storage.path(name)

    def writer(self, name, checksum=None):
        """A `storage.Writer` for a file being fetched; call `admit` after its commit."""
        return self.storage.writer(name, checksum)

    def admit(self, name):
        """Mark ``name`` as just used and evict others to keep within the limit."""
        self._touch(name)
        entries, total = [], 0
        for other in self.storage.list():
            with contextlib.suppress(FileNotFoundError):
                size = self.storage.path(other).stat().st_size
                used = self.storage._record_path(other).stat().st_mtime
                entries.append((used, other, size))
                total += size
        for _, other, size in sorted(entries):
            if total <= self.max_bytes:
                break
            if other != name:
                self.discard(other)
                total -= size
        return self.storage.path(name)

    def discard(self, name):
        """Remove ``name`` from the cache if it is there."""
        with contextlib.suppress(MissingFileError):
            self.storage._remove(name)

    def _touch(self, name):
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.storage._record_path(name))
