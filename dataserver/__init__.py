"""Generic file storage by global filename: storage on disk, the HTTP server, the client
with its local cache. Knows nothing of the database.

`dataserver` never imports `persistence`, `targets` or `awe`.

Examples
--------
>>> import dataserver
>>> client = dataserver.Client("/data/survey/files")        # a local directory
>>> client.store("flat.fits", "Flat-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits")
>>> client.retrieve("Flat-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits")
PosixPath('/data/survey/files/.../Flat-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits')
"""

from .cache import DEFAULT_CACHE_SIZE, Cache
from .checksum import ALGORITHM, file_checksum
from .client import Client, HTTPStore
from .errors import (ChecksumMismatchError, ConflictError, DataServerError,
                     DeleteRefusedError, InvalidNameError, MissingFileError,
                     PermissionDeniedError, ServerUnavailableError)
from .names import MAX_NAME_BYTES, validate_name
from .server import DataServerApp, serve
from .storage import FileInfo, Storage

__all__ = [
    "ALGORITHM",
    "DEFAULT_CACHE_SIZE",
    "MAX_NAME_BYTES",
    "Cache",
    "ChecksumMismatchError",
    "Client",
    "ConflictError",
    "DataServerApp",
    "DataServerError",
    "DeleteRefusedError",
    "FileInfo",
    "HTTPStore",
    "InvalidNameError",
    "MissingFileError",
    "PermissionDeniedError",
    "ServerUnavailableError",
    "Storage",
    "file_checksum",
    "serve",
    "validate_name",
]
