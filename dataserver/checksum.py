"""File checksums: BLAKE3 by default, SHA-256 understood.

A checksum is written ``"<algorithm>:<hex digest>"`` so a recorded one says how to
check it. BLAKE3 is the default because it is a 256-bit cryptographic hash like
SHA-256 but about 2.5 times faster here (3.3 GB/s against 1.3 GB/s on one core), and
every store and every retrieve hashes the whole file.
"""

import hashlib

import blake3

from .errors import DataServerError

__all__ = ["ALGORITHM", "CHUNK_SIZE", "file_checksum", "new_hasher", "split_checksum"]

ALGORITHM = "blake3"
"""The algorithm of the checksums this package records."""

CHUNK_SIZE = 1 << 20
"""Bytes read or written per step when streaming files: large enough that per-step
overhead vanishes, small enough that memory use stays flat."""

_ALGORITHMS = {"blake3": blake3.blake3, "sha256": hashlib.sha256}


def new_hasher(algorithm=ALGORITHM):
    """A fresh hash object with ``update()`` and ``hexdigest()`` for ``algorithm``."""
    try:
        return _ALGORITHMS[algorithm]()
    except KeyError:
        raise DataServerError(f"unknown checksum algorithm {algorithm!r}; "
                              f"known: {', '.join(_ALGORITHMS)}") from None


def split_checksum(checksum):
    """Split ``"blake3:ab12…"`` into ``("blake3", "ab12…")``."""
    algorithm, sep, digest = str(checksum).partition(":")
    if not sep or algorithm not in _ALGORITHMS or not digest:
        raise DataServerError(f"malformed checksum {checksum!r}; expected "
                              f"'<algorithm>:<hex digest>' with one of {', '.join(_ALGORITHMS)}")
    return algorithm, digest


def file_checksum(path, algorithm=ALGORITHM):
    """Return the checksum of the file at ``path``, e.g. ``'blake3:9f86d0…'``."""
    hasher = new_hasher(algorithm)
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            hasher.update(view[:n])
    return f"{algorithm}:{hasher.hexdigest()}"
