"""The HTTP data server: an ASGI application over a `Storage`, served by uvicorn.

Endpoints (names are percent-decoded by the server, then validated):

=======================  =================================================================
``GET /``                what the server is (JSON); a health check
``GET /files?prefix=P``  the sorted names starting with ``P`` (JSON)
``HEAD /files/NAME``     existence and metadata in headers: size, ``X-Checksum``, ``ETag``
``GET /files/NAME``      the bytes, streamed; one ``Range: bytes=A-B`` gives a 206 part
``PUT /files/NAME``      store the streamed body; an ``X-Checksum`` header is checked
``DELETE /files/NAME``   delete a name matching the server's deletable patterns
=======================  =================================================================

``PUT`` and ``DELETE`` need ``Authorization: Bearer <token>``; so do reads when the
server protects them. Without a token configured the server is read-only. Errors are
JSON ``{"error": <class name in dataserver.errors>, "message": ...}``.
"""

import asyncio
import hmac
import json
import urllib.parse

from .checksum import CHUNK_SIZE
from .errors import (ChecksumMismatchError, ConflictError, DataServerError,
                     DeleteRefusedError, InvalidNameError, MissingFileError,
                     PermissionDeniedError)
from .storage import Storage

__all__ = ["DataServerApp", "serve"]

_STATUS = {
    InvalidNameError: 400, PermissionDeniedError: 403, DeleteRefusedError: 403,
    MissingFileError: 404, ConflictError: 409, ChecksumMismatchError: 422,
}


class _HTTPError(Exception):
    def __init__(self, status, error, message, headers=()):
        super().__init__(message)
        self.status, self.error, self.headers = status, error, list(headers)


class DataServerApp:
    """The ASGI application of a data server.

    Parameters
    ----------
    storage : `Storage`
        Where the files are; its ``deletable`` patterns say what ``DELETE`` may remove.
    token : `str`, optional
        The bearer token that writes and deletes need. Without one the server is
        read-only.
    protect_reads : `bool`
        Whether reads need the token too.
    """

    def __init__(self, storage, *, token=None, protect_reads=False):
        if protect_reads and not token:
            raise DataServerError("protecting reads needs a token: give one")
        self.storage, self.token, self.protect_reads = storage, token, protect_reads

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except _HTTPError as err:
            await _send_json(send, err.status, {"error": err.error, "message": str(err)},
                             err.headers, head=scope["method"] == "HEAD")
        except DataServerError as err:
            status = _STATUS.get(type(err), 500)
            body = {"error": type(err).__name__, "message": str(err)}
            if isinstance(err, ChecksumMismatchError):
                body.update(expected=err.expected, actual=err.actual)
            await _send_json(send, status, body, head=scope["method"] == "HEAD")
        except OSError as err:  # e.g. a full disk: nothing was stored, say why
            await _send_json(send, 500, {
                "error": "DataServerError",
                "message": f"the data server failed on {scope['path']!r}: "
                           f"{err.strerror or err}"}, head=scope["method"] == "HEAD")

    async def _route(self, scope, receive, send):
        method, path = scope["method"], scope["path"]
        headers = dict(scope["headers"])
        if path == "/" and method in ("GET", "HEAD"):
            await _send_json(send, 200, {
                "service": "awe-dataserver",
                "protect_reads": self.protect_reads, "read_only": not self.token},
                head=method == "HEAD")
            return
        if path == "/files" and method == "GET":
            self._authorize(headers, write=False)
            query = urllib.parse.parse_qs(scope["query_string"].decode("latin-1"))
            prefix = query.get("prefix", [""])[0]
            names = await asyncio.to_thread(self.storage.list, prefix)
            await _send_json(send, 200, {"names": names})
            return
        if not path.startswith("/files/"):
            raise _HTTPError(404, "NotFound", f"no endpoint {path!r}; see GET /")
        name = path[len("/files/"):]
        if method in ("GET", "HEAD"):
            self._authorize(headers, write=False)
            await self._download(name, headers, send, head=method == "HEAD")
        elif method == "PUT":
            self._authorize(headers, write=True)
            await self._upload(name, headers, receive, send)
        elif method == "DELETE":
            self._authorize(headers, write=True)
            await asyncio.to_thread(self.storage.delete, name)
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            raise _HTTPError(405, "MethodNotAllowed", f"{method} is not allowed on {path}",
                             [(b"allow", b"GET, HEAD, PUT, DELETE")])

    def _authorize(self, headers, *, write):
        if not write and not self.protect_reads:
            return
        if not self.token:
            raise PermissionDeniedError(
                "this data server has no token configured, so it is read-only; "
                "restart it with a token to allow writes")
        given = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise _HTTPError(401, "PermissionDeniedError",
                             "this request needs 'Authorization: Bearer <token>'; set the "
                             "data server token (AWE_DATASERVER_TOKEN) on the client",
                             [(b"www-authenticate", b"Bearer")])
        if not hmac.compare_digest(credential.encode(), self.token.encode()):
            raise PermissionDeniedError("the bearer token is wrong for this data server")

    async def _download(self, name, headers, send, *, head):
        info = await asyncio.to_thread(self.storage.info, name)
        start, end, status = 0, info.size, 200
        extra = []
        if b"range" in headers:
            span = _parse_range(headers[b"range"].decode("latin-1"), info.size)
            if span is None:
                raise _HTTPError(416, "RangeNotSatisfiable",
                                 f"{headers[b'range'].decode('latin-1')!r} is outside "
                                 f"{name!r} ({info.size} bytes)",
                                 [(b"content-range", f"bytes */{info.size}".encode())])
            if span != (0, info.size):
                start, end, status = *span, 206
                extra = [(b"content-range", f"bytes {start}-{end - 1}/{info.size}".encode())]
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(end - start).encode()),
            (b"accept-ranges", b"bytes"),
            (b"etag", f'"{info.checksum}"'.encode()),
            (b"x-checksum", info.checksum.encode()),
            (b"x-stored", info.stored.encode()),
            *extra]})
        if head:
            await send({"type": "http.response.body", "body": b""})
            return
        f = await asyncio.to_thread(self.storage.open, name)
        try:
            f.seek(start)
            remaining = end - start
            pending = asyncio.ensure_future(asyncio.to_thread(f.read, min(CHUNK_SIZE, remaining)))
            while remaining > 0:
                chunk = await pending  # read the next chunk while this one is sent
                if not chunk:
                    raise DataServerError(f"{name!r} shrank while being sent")
                remaining -= len(chunk)
                if remaining > 0:
                    pending = asyncio.ensure_future(
                        asyncio.to_thread(f.read, min(CHUNK_SIZE, remaining)))
                await send({"type": "http.response.body", "body": chunk,
                            "more_body": remaining > 0})
            if end == start:
                pending.cancel()
                await send({"type": "http.response.body", "body": b""})
        finally:
            f.close()

    async def _upload(self, name, headers, receive, send):
        checksum = headers.get(b"x-checksum", b"").decode("latin-1") or None
        writer = await asyncio.to_thread(self.storage.writer, name, checksum)
        pending = None
        try:
            buffer, more = bytearray(), True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client went away: the upload is thrown away
                buffer += message.get("body", b"")
                more = message.get("more_body", False)
                if len(buffer) >= CHUNK_SIZE or not more:
                    if pending:
                        await pending
                    # write this buffer while the next one is received
                    pending = asyncio.ensure_future(asyncio.to_thread(writer.write, buffer))
                    buffer = bytearray()
            await pending
            pending = None
            info, created = await asyncio.to_thread(writer.commit)
        finally:
            if pending:
                await asyncio.gather(pending, return_exceptions=True)
            writer.abort()
        await _send_json(send, 201 if created else 200, {**info.to_json(), "created": created})


def _parse_range(value, size):
    """``(start, stop)`` for a single ``bytes=`` range, the whole file for a form this
    server ignores (several ranges), None if unsatisfiable."""
    unit, _, spec = value.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return 0, size
    first, _, last = spec.strip().partition("-")
    try:
        if first:
            start = int(first)
            stop = min(int(last) + 1, size) if last else size
            if last and int(last) < start:
                return 0, size  # not a valid range: RFC 9110 says ignore it
        else:
            start, stop = max(size - int(last), 0), size
    except ValueError:
        return 0, size
    if start >= size or stop <= start:
        return None
    return start, stop


async def _send_json(send, status, body, headers=(), *, head=False):
    """Send ``body`` as JSON; an error's class also goes in ``X-Error``, for HEAD."""
    data = json.dumps(body).encode()
    if "error" in body:
        headers = [*headers, (b"x-error", body["error"].encode())]
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()), *headers]})
    await send({"type": "http.response.body", "body": b"" if head else data})


def serve(root, *, host="127.0.0.1", port=8008, token=None, protect_reads=False,
          deletable=(), log_level="info"):
    """Serve the files under ``root`` over HTTP until interrupted.

    Uploads left in ``root/.tmp`` by a killed server more than a day ago are swept
    first. See `DataServerApp` for the other parameters.
    """
    import uvicorn

    storage = Storage(root, deletable=deletable)
    storage.sweep_temporary()
    app = DataServerApp(storage, token=token, protect_reads=protect_reads)
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="on",
                server_header=False)
