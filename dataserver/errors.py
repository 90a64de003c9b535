"""The data server's errors, each also a Python builtin so callers may catch either.

The HTTP server sends an error as JSON with its class name in ``error``; the client
raises the same class again, so code behaves alike with a local directory and a server.
"""

__all__ = [
    "ChecksumMismatchError",
    "ConflictError",
    "DataServerError",
    "DeleteRefusedError",
    "InvalidNameError",
    "MissingFileError",
    "PermissionDeniedError",
    "ServerUnavailableError",
]


class DataServerError(Exception):
    """Base class of every data server error."""


class InvalidNameError(DataServerError, ValueError):
    """Raised if a name cannot be a global filename (separators, ``..``, control
    characters, too long)."""


class MissingFileError(DataServerError, FileNotFoundError):
    """Raised if no data server holds a file of this name."""


class ConflictError(DataServerError, FileExistsError):
    """Raised if a name is already stored with different content; stored files are
    never overwritten."""


class ChecksumMismatchError(DataServerError, ValueError):
    """Raised if a file's content does not match its recorded checksum.

    Attributes
    ----------
    name : `str`
        The global filename.
    expected, actual : `str`
        The recorded checksum and the checksum of the bytes read.
    where : `str`
        The server or directory the bytes came from.
    """

    def __init__(self, message, *, name=None, expected=None, actual=None, where=None):
        super().__init__(message)
        self.name, self.expected, self.actual, self.where = name, expected, actual, where


class PermissionDeniedError(DataServerError, PermissionError):
    """Raised if the bearer token is missing or wrong for a request that needs one."""


class DeleteRefusedError(DataServerError, PermissionError):
    """Raised if a name may not be deleted: only names matching the store's deletable
    patterns (a user's sandbox products) can be, never raw data."""


class ServerUnavailableError(DataServerError, ConnectionError):
    """Raised if a data server could not be reached after the retries."""


BY_NAME = {cls.__name__: cls for cls in (
    ChecksumMismatchError, ConflictError, DataServerError, DeleteRefusedError,
    InvalidNameError, MissingFileError, PermissionDeniedError, ServerUnavailableError)}
