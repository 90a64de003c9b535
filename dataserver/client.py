"""Reading and writing files by global filename, on a local directory or HTTP servers.

`Client` is what the rest of AWE uses; it hides whether the files are in a directory
(the embedded default) or on data servers, which it tries in order.
"""

import http.client
import json
import os
import shutil
import threading
import time
import urllib.parse
from pathlib import Path

from .cache import DEFAULT_CACHE_SIZE, Cache
from .checksum import CHUNK_SIZE, split_checksum
from .errors import (BY_NAME, ChecksumMismatchError, ConflictError, DataServerError,
                     MissingFileError, PermissionDeniedError, ServerUnavailableError)
from .names import validate_name
from .storage import FileInfo, Storage

__all__ = ["Client", "HTTPStore"]

_RETRY_STATUSES = {502, 503, 504}


class Client:
    """Store and retrieve files on a local directory or on one or more data servers.

    Parameters
    ----------
    stores : `str`, `os.PathLike` or a sequence of them
        Where files live, in the order they are tried: a directory, or data server URLs
        such as ``'http://dataserver1:8008'``. New files go to the first; a file
        missing on one is looked for on the next.
    token : `str`, optional
        The bearer token of the data servers, needed to store and delete (and to read,
        on servers that protect reads). Default: ``$AWE_DATASERVER_TOKEN``.
    cache_dir : `str` or `os.PathLike`, optional
        Where files retrieved from data servers are cached. Default:
        ``$XDG_CACHE_HOME/awe`` or ``~/.cache/awe``. Unused for directories: their
        files are returned where they are.
    cache_size : `int`
        The cache's size limit in bytes.
    retries : `int`
        How often a request that failed on the network is tried again, waiting
        ``backoff`` seconds, doubling each time, before the server counts as down.
    timeout : `float`
        Seconds to wait for a server to answer.
    deletable : sequence of `str`
        Shell patterns of the names `delete` may remove from directories (a data
        server has its own, see ``awe dataserver serve --deletable``).

    Examples
    --------
    >>> client = Client("/data/survey/files")            # the embedded default
    >>> client.store("bias.fits", "Bias-SIM-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits")
    >>> client = Client(["http://ds1:8008", "http://ds2:8008"], token="s3cret")
    >>> path = client.retrieve("Bias-SIM-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits")
    """

    def __init__(self, stores, *, token=None, cache_dir=None, cache_size=DEFAULT_CACHE_SIZE,
                 retries=4, backoff=0.25, timeout=60.0, deletable=()):
        if isinstance(stores, (str, os.PathLike)):
            stores = [stores]
        if not stores:
            raise DataServerError("a data client needs at least one store: a directory "
                                  "or a data server URL")
        token = token or os.environ.get("AWE_DATASERVER_TOKEN") or None
        self._config = dict(stores=list(stores), token=token, cache_dir=cache_dir,
                            cache_size=cache_size, retries=retries, backoff=backoff,
                            timeout=timeout, deletable=tuple(deletable))
        self.stores = [
            HTTPStore(s, token=token, retries=retries, backoff=backoff, timeout=timeout)
            if str(s).startswith(("http://", "https://")) else Storage(s, deletable=deletable)
            for s in stores]
        self._cache_dir, self._cache_size, self._cache = cache_dir, cache_size, None

    def __repr__(self):
        return f"Client([{', '.join(_where(s) for s in self.stores)}])"

    def __reduce__(self):
        # Pickled (e.g. to be sent to a Dask worker) as its settings: the copy opens
        # its own connections.
        return _client_from_config, (self._config,)

    @property
    def cache(self):
        """The `Cache` of files retrieved from data servers (made on first use)."""
        if self._cache is None:
            root = self._cache_dir or Path(
                os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "awe"
            self._cache = Cache(root, self._cache_size)
        return self._cache

    def store(self, path, name, *, checksum=None):
        """Store the file at ``path`` under ``name`` on the first store.

        Storing a name again with identical content does nothing; with different
        content it is refused. Given ``checksum`` (e.g. computed to build the name),
        the store checks the bytes it received against it, and a name already stored
        with that checksum is not uploaded again.

        Returns
        -------
        info : `FileInfo`
            The stored file's name, size and checksum.

        Raises
        ------
        ConflictError
            Raised if ``name`` is stored with different content.
        """
        validate_name(name)
        store = self.stores[0]
        if checksum and isinstance(store, HTTPStore):
            try:
                existing = store.info(name)
            except MissingFileError:
                pass
            else:
                if existing.checksum != checksum:
                    raise ConflictError(
                        f"{name!r} is already on {store.url} with different content "
                        f"({existing.checksum}, not {checksum}); stored files are never "
                        "replaced: give the new file a new name")
                return existing
        return store.store(path, name, checksum)[0]

    def retrieve(self, name, dest=None, *, checksum=None):
        """Return the local path of the file ``name``, fetching it if need be.

        The bytes are verified against their recorded checksum (and ``checksum``, if
        given, e.g. the one in the database) every time. A corrupt cached copy is
        fetched again; a corrupt copy on a store raises `ChecksumMismatchError`.

        Parameters
        ----------
        dest : `str` or `os.PathLike`, optional
            Where to put a copy of the file you may change (a directory or a file
            name). Without it, the path returned is read-only: a cached copy, or the
            file in a local store.
        """
        validate_name(name)
        found = self._cached_copy(name, checksum)
        errors = []
        for store in self.stores if found is None else ():
            try:
                if isinstance(store, Storage):
                    store.verify(name, checksum)
                    found = store.path(name)
                else:
                    found = self._fetch(store, name, checksum)
                break
            except (MissingFileError, ServerUnavailableError) as err:
                errors.append(err)
        if found is None:
            raise _not_found(name, errors)
        if dest is None:
            return found
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / name
        shutil.copyfile(found, dest)
        return dest

    def exists(self, name):
        """Whether any store holds ``name``."""
        return self._first(name, lambda store: store.info(name)) is not None

    def info(self, name):
        """Return the `FileInfo` (name, size, checksum) of ``name`` from the first store
        that has it."""
        info = self._first(name, lambda store: store.info(name))
        if info is None:
            raise MissingFileError(f"{name!r} is on none of {', '.join(map(_where, self.stores))}")
        return info

    def list(self, prefix=""):
        """Return the sorted names on all stores that start with ``prefix``."""
        return sorted(set().union(*(store.list(prefix) for store in self.stores)))

    def delete(self, name):
        """Delete ``name`` from every store holding it, and from the cache. Stores allow
        this only for names matching their deletable patterns (sandbox products)."""
        validate_name(name)
        deleted = False
        for store in self.stores:
            try:
                store.delete(name)
                deleted = True
            except MissingFileError:
                pass
        if self._cache is not None:
            self._cache.discard(name)
        if not deleted:
            raise MissingFileError(f"{name!r} is on none of {', '.join(map(_where, self.stores))}")

    def _cached_copy(self, name, checksum):
        if all(isinstance(store, Storage) for store in self.stores):
            return None
        return self.cache.lookup(name, checksum)

    def _fetch(self, store, name, checksum):
        with self.cache.writer(name) as writer:
            store.download(name, writer, checksum)
            writer.commit()
        return self.cache.admit(name)

    def _first(self, name, call):
        """The first store's answer that is not 'missing'; None if all say missing."""
        validate_name(name)
        errors = []
        for store in self.stores:
            try:
                return call(store)
            except (MissingFileError, ServerUnavailableError) as err:
                errors.append(err)
        if any(isinstance(err, ServerUnavailableError) for err in errors):
            raise _not_found(name, errors)
        return None


def _client_from_config(config):
    return Client(**config)


def _not_found(name, errors):
    """The error for a name no store gave: unavailable if a server was down."""
    if any(isinstance(err, ServerUnavailableError) for err in errors):
        return ServerUnavailableError(
            f"could not get {name!r}: " + "; ".join(str(err) for err in errors))
    return MissingFileError("; ".join(str(err) for err in errors))


def _where(store):
    return store.url if isinstance(store, HTTPStore) else str(store.root)


class HTTPStore:
    """One data server, spoken to over HTTP with a connection per thread.

    Parameters are those of `Client`; ``url`` is the server's base URL.
    """

    def __init__(self, url, *, token=None, retries=4, backoff=0.25, timeout=60.0):
        parts = urllib.parse.urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DataServerError(f"{url!r} is not a data server URL like 'http://host:8008'")
        self.url = str(url).rstrip("/")
        self._parts = parts
        self._base = parts.path.rstrip("/")
        self.token, self.retries, self.backoff, self.timeout = token, retries, backoff, timeout
        self._local = threading.local()

    def __repr__(self):
        return f"HTTPStore({self.url!r})"

    # -- the operations ---------------------------------------------------------

    def info(self, name):
        def head(response):
            return _info_from_headers(name, response)
        return self._request("HEAD", name, head)

    def list(self, prefix=""):
        query = urllib.parse.urlencode({"prefix": prefix})
        return self._request("GET", None, lambda r: json.loads(r.read())["names"],
                             path=f"/files?{query}")

    def delete(self, name):
        self._request("DELETE", name, lambda r: r.read())

    def store(self, path, name, checksum=None):
        """Upload the file at ``path``; returns ``(FileInfo, created)``."""
        size = os.path.getsize(path)
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        if checksum:
            split_checksum(checksum)
            headers["X-Checksum"] = checksum

        def body():
            return _LimitedReader(path, size)

        def stored(response):
            answer = json.loads(response.read())
            created = answer.pop("created")
            return FileInfo(**answer), created
        return self._request("PUT", name, stored, body=body, headers=headers)

    def download(self, name, writer, expected=None):
        """Stream ``name`` into ``writer`` (a `storage.Writer`) and check its checksum
        against the server's record and ``expected``."""
        def receive(response):
            recorded = response.getheader("X-Checksum")
            if expected and recorded != expected:
                raise ChecksumMismatchError(
                    f"{self.url} holds {name!r} with checksum {recorded}, but "
                    f"{expected} was expected (e.g. by the database); ask the data "
                    "server's operator to check the file", name=name, expected=expected,
                    actual=recorded, where=self.url)
            writer.restart(recorded)
            buffer = bytearray(CHUNK_SIZE)
            view = memoryview(buffer)
            while n := response.readinto(buffer):
                writer.write(view[:n])
            actual = writer.checksum(split_checksum(recorded)[0])  # commit checks again
            if actual != recorded:
                raise ChecksumMismatchError(
                    f"the copy of {name!r} on {self.url} is corrupt: its bytes have "
                    f"checksum {actual} but the server recorded {recorded}; ask the data "
                    "server's operator to restore it", name=name, expected=recorded,
                    actual=actual, where=self.url)
        self._request("GET", name, receive)

    # -- HTTP -------------------------------------------------------------------

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = (http.client.HTTPSConnection if self._parts.scheme == "https"
                   else http.client.HTTPConnection)
            conn = cls(self._parts.hostname, self._parts.port, timeout=self.timeout,
                       blocksize=CHUNK_SIZE)
            self._local.conn = conn
        return conn

    def _drop_connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _request(self, method, name, handle, *, path=None, body=None, headers=None):
        """Send a request and give the response to ``handle``, retrying network
        failures with exponential backoff."""
        if path is None:
            path = "/files/" + urllib.parse.quote(name, safe="")
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        what = name or path
        for attempt in range(self.retries + 1):
            try:
                conn = self._connection()
                payload = body() if body else None
                try:
                    try:
                        conn.request(method, self._base + path, body=payload, headers=headers)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the server may have refused before reading the body
                    response = conn.getresponse()
                finally:
                    if payload is not None:
                        payload.close()
                if response.status in _RETRY_STATUSES:
                    raise ConnectionError(f"HTTP {response.status} {response.reason}")
                if response.status >= 400:
                    raise self._error(response, what)
                try:
                    result = handle(response)
                except DataServerError:
                    if not response.isclosed():  # its unread rest would break the next request
                        self._drop_connection()
                    raise
                if not response.isclosed():
                    response.read()
                return result
            except DataServerError:
                raise  # an answer, not a network failure (some are also OSErrors)
            except (OSError, http.client.HTTPException) as err:
                self._drop_connection()
                if attempt == self.retries:
                    raise ServerUnavailableError(
                        f"data server {self.url} failed for {what!r} after "
                        f"{self.retries + 1} attempts: {err or type(err).__name__}") from err
                time.sleep(self.backoff * 2**attempt)
            except BaseException:
                self._drop_connection()
                raise

    def _error(self, response, what):
        """The `DataServerError` a failed response stands for."""
        try:
            answer = json.loads(response.read() or b"{}")
        except ValueError:
            answer = {}
        message = answer.get("message") or f"HTTP {response.status} {response.reason}"
        error_type = answer.get("error") or response.getheader("X-Error")  # HEAD: no body
        if response.status == 404 and error_type in (None, "MissingFileError"):
            cls = MissingFileError
        elif response.status in (401, 403):
            cls = BY_NAME.get(error_type, PermissionDeniedError)
        else:
            cls = BY_NAME.get(error_type, DataServerError)
        if cls is MissingFileError:
            error = cls(f"{what!r} is not on {self.url}")
        else:
            error = cls(f"{self.url}: {message}")
        if isinstance(error, ChecksumMismatchError):
            error.name, error.expected, error.actual = what, answer.get("expected"), answer.get("actual")
            error.where = self.url
        return error


class _LimitedReader:
    """The first ``size`` bytes of a file, so a file growing while it is uploaded
    cannot send more than the Content-Length announced."""

    def __init__(self, path, size):
        self._file, self._left = open(path, "rb"), size

    def read(self, n=-1):
        n = self._left if n < 0 else min(n, self._left)
        data = self._file.read(n)
        self._left -= len(data)
        return data

    def close(self):
        self._file.close()


def _info_from_headers(name, response):
    return FileInfo(name=name, size=int(response.getheader("Content-Length")),
                    checksum=response.getheader("X-Checksum"),
                    stored=response.getheader("X-Stored"))
