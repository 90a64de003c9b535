"""Global filenames: what a valid one looks like, and where it lives on disk."""

import hashlib
import unicodedata

from .errors import InvalidNameError

__all__ = ["MAX_NAME_BYTES", "shard", "validate_name"]

MAX_NAME_BYTES = 200
"""Longest name, in UTF-8 bytes: room for the storage's suffixes within the 255 bytes
every common filesystem allows in a filename."""

_FORBIDDEN = set('/\\%')


def validate_name(name):
    """Return ``name`` if it can be a global filename, else raise `InvalidNameError`.

    A name is one path component: not empty, at most `MAX_NAME_BYTES` bytes, not
    starting with ``.``, and free of ``..``, ``/``, ``\\``, ``%`` (so no
    percent-encoding can smuggle a separator through a URL), whitespace other than a
    plain space, and control characters.

    Examples
    --------
    >>> validate_name("Cal-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits")
    'Cal-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits'
    >>> validate_name("../etc/passwd")
    Traceback (most recent call last):
    ...
    dataserver.errors.InvalidNameError: invalid global filename '../etc/passwd': ...
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"a global filename must be a str, not {type(name).__name__}")
    problem = _problem(name)
    if problem:
        raise InvalidNameError(f"invalid global filename {name!r}: {problem}")
    return name


def _problem(name):
    if not name:
        return "it is empty"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    if name.startswith("."):
        return "it starts with '.'"
    if ".." in name:
        return "it contains '..'"
    bad = sorted(set(name) & _FORBIDDEN)
    if bad:
        return f"it contains {' '.join(repr(c) for c in bad)}; use '-' or '_' instead"
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") or (
                char.isspace() and char != " "):
            return f"it contains the control or space character {char!r}"
    return None


def shard(name):
    """The two subdirectory names a file is stored under: a hash of its name spreads
    names evenly over 65,536 directories, whatever their prefixes.

    Examples
    --------
    >>> shard("Cal-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits")
    ('e4', '51')
    """
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
    return digest[:2], digest[2:4]
