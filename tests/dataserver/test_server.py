"""The HTTP server, through `dataserver.Client` and at the protocol level with
`http.client`: what it stores, what it refuses, and who may do what."""

import http.client
import json
import os
import socket
import time

import pytest

from dataserver import (Client, ConflictError, DeleteRefusedError, InvalidNameError,
                        MissingFileError, PermissionDeniedError, Storage, file_checksum)
from tests.dataserver.conftest import TOKEN

NAME = "Raw-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits"


def request(server, method, path, body=None, *, token=None, headers=None):
    """Send one request on a fresh connection; return ``(status, headers, body)``."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def error_of(body):
    """The error class name of a JSON error answer."""
    return json.loads(body)["error"]


def client_for(server, tmp_path, token=TOKEN, **kwargs):
    return Client(server.url, token=token, cache_dir=tmp_path / "cache", **kwargs)


def make_file(path, content):
    path.write_bytes(content)
    return path


def tree(directory):
    """Every path under ``directory``, relative to it."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_store_and_retrieve_round_trip(server, tmp_path):
    content = os.urandom(2 * (1 << 20) + 333)
    source = make_file(tmp_path / "source.fits", content)
    client = client_for(server, tmp_path)
    info = client.store(source, NAME)
    assert (info.name, info.size, info.checksum) == (NAME, len(content), file_checksum(source))
    assert client.exists(NAME) and client.info(NAME) == info
    path = client.retrieve(NAME)
    assert path.read_bytes() == content
    assert path.is_relative_to(tmp_path / "cache")
    assert Storage(server.root).verify(NAME) == info  # the server's copy is whole too


def test_head_gives_size_and_checksum(server, tmp_path):
    source = make_file(tmp_path / "source", os.urandom(12345))
    client_for(server, tmp_path).store(source, NAME)
    status, headers, body = request(server, "HEAD", f"/files/{NAME}")
    assert status == 200 and body == b""
    assert int(headers["Content-Length"]) == 12345
    assert headers["X-Checksum"] == file_checksum(source)
    assert headers["ETag"] == f'"{file_checksum(source)}"'
    assert headers["Accept-Ranges"] == "bytes"
    status, _, body = request(server, "HEAD", "/files/Not-there.fits")
    assert status == 404 and body == b""


@pytest.mark.parametrize("range_, start, stop", [
    ("bytes=10-19", 10, 20),
    ("bytes=-5", 995, 1000),
    ("bytes=100-", 100, 1000),
    ("bytes=990-5000", 990, 1000),
], ids=["closed", "suffix", "open-end", "past-the-end"])
def test_range_read_gives_exactly_the_part(server, tmp_path, range_, start, stop):
    content = os.urandom(1000)
    client_for(server, tmp_path).store(make_file(tmp_path / "source", content), NAME)
    status, headers, body = request(server, "GET", f"/files/{NAME}", headers={"Range": range_})
    assert status == 206
    assert headers["Content-Range"] == f"bytes {start}-{stop - 1}/1000"
    assert int(headers["Content-Length"]) == stop - start
    assert body == content[start:stop]


def test_range_of_the_whole_file_gives_it_all(server, tmp_path):
    content = os.urandom(1000)
    client_for(server, tmp_path).store(make_file(tmp_path / "source", content), NAME)
    status, _, body = request(server, "GET", f"/files/{NAME}", headers={"Range": "bytes=0-"})
    assert status == 200 and body == content


@pytest.mark.parametrize("range_", ["bytes=5-2", "bytes=1-2,5-6", "items=0-5", "bytes=x-y"])
def test_range_the_server_cannot_use_is_ignored(server, tmp_path, range_):
    """RFC 9110: an invalid (or multi-part) range is ignored and the whole file sent."""
    content = os.urandom(1000)
    client_for(server, tmp_path).store(make_file(tmp_path / "source", content), NAME)
    status, _, body = request(server, "GET", f"/files/{NAME}", headers={"Range": range_})
    assert status == 200 and body == content


@pytest.mark.parametrize("range_", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range_is_416(server, tmp_path, range_):
    client_for(server, tmp_path).store(make_file(tmp_path / "source", os.urandom(1000)), NAME)
    status, headers, body = request(server, "GET", f"/files/{NAME}", headers={"Range": range_})
    assert status == 416
    assert headers["Content-Range"] == "bytes */1000"
    assert error_of(body) == "RangeNotSatisfiable"


def test_listing_by_prefix(server, tmp_path):
    client = client_for(server, tmp_path)
    names = ["Cal-b", "Raw-2", "Cal-a", "Raw-10", "Cal-c"]
    for i, name in enumerate(names):
        client.store(make_file(tmp_path / f"src{i}", name.encode()), name)
    status, _, body = request(server, "GET", "/files?prefix=Cal-")
    assert status == 200 and json.loads(body) == {"names": ["Cal-a", "Cal-b", "Cal-c"]}
    status, _, body = request(server, "GET", "/files")
    assert status == 200 and json.loads(body)["names"] == sorted(names)
    assert client.list("Raw-") == ["Raw-10", "Raw-2"]
    assert client.list("None-") == []


def test_storing_identical_content_again_changes_nothing(server, tmp_path):
    source = make_file(tmp_path / "source", b"identical")
    store = client_for(server, tmp_path).stores[0]
    first, created = store.store(source, NAME)
    again, created_again = store.store(source, NAME)
    assert created and not created_again and again == first
    status, _, body = request(server, "PUT", f"/files/{NAME}", b"identical", token=TOKEN)
    assert status == 200
    assert json.loads(body) == {**first.to_json(), "created": False}


def test_storing_different_content_is_refused(server, tmp_path):
    client = client_for(server, tmp_path)
    original = client.store(make_file(tmp_path / "a", b"original"), NAME)
    impostor = make_file(tmp_path / "b", b"impostor")
    with pytest.raises(ConflictError, match="never replaced"):
        client.store(impostor, NAME)
    with pytest.raises(ConflictError, match="never replaced"):  # refused before uploading
        client.store(impostor, NAME, checksum=file_checksum(impostor))
    status, _, body = request(server, "PUT", f"/files/{NAME}", b"impostor", token=TOKEN)
    assert status == 409 and error_of(body) == "ConflictError"
    assert Storage(server.root).verify(NAME) == original
    assert Storage(server.root).path(NAME).read_bytes() == b"original"
    assert os.listdir(server.root / ".tmp") == []


RAW_BAD_PATHS = [
    "/files/..%2F..%2Fetc%2Fpasswd",
    "/files/%2e%2e",
    "/files/%2E%2E%2Fx",
    "/files/a%00b",
    "/files/%252e%252e%252fx",
    "/files/..",
    "/files/.hidden",
    "/files/a%0Ab",
    "/files/a%5Cb",
]


@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD", "DELETE"])
def test_bad_names_sent_raw_are_refused(start_server, tmp_path, method):
    """Percent-decoding happens once, then the name is validated: no encoding of a
    separator or of '..' reaches the disk. The root is deep inside ``tmp_path`` so that
    any escape would land where this test looks."""
    server = start_server(tmp_path / "jail" / "deeper" / "root", deletable=["*"])
    before = tree(tmp_path)
    for path in RAW_BAD_PATHS:
        status, _, body = request(server, method, path, b"escaped!", token=TOKEN)
        assert status == 400, path
        if method != "HEAD":
            assert error_of(body) == "InvalidNameError", path
    assert tree(tmp_path) == before
    assert sorted(os.listdir(server.root)) == [".tmp"]
    assert os.listdir(server.root / ".tmp") == []


@pytest.mark.parametrize("name", ["..", "../x", ".hidden", "a\x00b", "a%2Fb"])
def test_server_refusal_of_a_bad_name_reaches_the_client_as_invalid_name(
        server, tmp_path, name):
    """The server validates names itself, whatever a client let through."""
    store = client_for(server, tmp_path).stores[0]  # below Client, which checks first
    with pytest.raises(InvalidNameError):
        store.store(make_file(tmp_path / "source", b"x"), name)
    with pytest.raises(InvalidNameError):
        store.delete(name)
    with pytest.raises(InvalidNameError):  # HEAD: the error's class comes in X-Error
        store.info(name)
    with Storage(tmp_path / "scratch").writer("scratch") as writer, \
            pytest.raises(InvalidNameError):
        store.download(name, writer)
    assert Storage(server.root).list() == []
    assert os.listdir(server.root / ".tmp") == []


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_writes_without_a_token_are_401(server, tmp_path, method):
    Storage(server.root, deletable=["*"]).store(make_file(tmp_path / "a", b"a"), "Sandbox-a")
    status, headers, body = request(server, method, "/files/Sandbox-a", b"b")
    assert status == 401 and error_of(body) == "PermissionDeniedError"
    assert headers["WWW-Authenticate"] == "Bearer"
    client = client_for(server, tmp_path, token=None)
    with pytest.raises(PermissionDeniedError, match="Bearer"):
        if method == "PUT":
            client.store(make_file(tmp_path / "b", b"b"), "Sandbox-b")
        else:
            client.delete("Sandbox-a")
    assert Storage(server.root).list() == ["Sandbox-a"]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_writes_with_a_wrong_token_are_403(server, tmp_path, method):
    Storage(server.root, deletable=["*"]).store(make_file(tmp_path / "a", b"a"), "Sandbox-a")
    status, _, body = request(server, method, "/files/Sandbox-a", b"b", token="wrong")
    assert status == 403 and error_of(body) == "PermissionDeniedError"
    status, _, body = request(server, method, "/files/Sandbox-a", b"b",
                              headers={"Authorization": f"Basic {TOKEN}"})
    assert status == 401 and error_of(body) == "PermissionDeniedError"
    client = client_for(server, tmp_path, token="wrong")
    with pytest.raises(PermissionDeniedError, match="token is wrong"):
        if method == "PUT":
            client.store(make_file(tmp_path / "b", b"b"), "Sandbox-b")
        else:
            client.delete("Sandbox-a")
    assert Storage(server.root).list() == ["Sandbox-a"]


def test_token_from_the_environment_is_used_by_the_client(server, tmp_path, monkeypatch):
    monkeypatch.setenv("AWE_DATASERVER_TOKEN", TOKEN)
    client = Client(server.url, cache_dir=tmp_path / "cache")
    client.store(make_file(tmp_path / "a", b"a"), NAME)
    assert client.retrieve(NAME).read_bytes() == b"a"


def test_protected_reads_need_the_token(start_server, tmp_path):
    server = start_server(protect_reads=True, token_file=True)
    source = make_file(tmp_path / "source", b"secret survey data")
    client_for(server, tmp_path, token=TOKEN).store(source, NAME)
    for method, path in [("GET", f"/files/{NAME}"), ("HEAD", f"/files/{NAME}"),
                         ("GET", "/files?prefix=")]:
        status, _, _ = request(server, method, path)
        assert status == 401, (method, path)
        status, _, _ = request(server, method, path, token="wrong")
        assert status == 403, (method, path)
        status, _, _ = request(server, method, path, token=TOKEN)
        assert status == 200, (method, path)
    status, _, body = request(server, "GET", "/")
    assert status == 200 and json.loads(body)["protect_reads"] is True
    anonymous = client_for(server, tmp_path, token=None, retries=0)
    with pytest.raises(PermissionDeniedError):
        anonymous.retrieve(NAME)
    with pytest.raises(PermissionDeniedError):
        anonymous.info(NAME)
    assert client_for(server, tmp_path).retrieve(NAME).read_bytes() == b"secret survey data"


def test_delete_is_refused_for_names_not_matching_deletable(server, tmp_path):
    client = client_for(server, tmp_path)
    raw = client.store(make_file(tmp_path / "raw", b"raw data"), NAME)
    with pytest.raises(DeleteRefusedError, match="may not be deleted"):
        client.delete(NAME)
    status, _, body = request(server, "DELETE", f"/files/{NAME}", token=TOKEN)
    assert status == 403 and error_of(body) == "DeleteRefusedError"
    assert Storage(server.root).verify(NAME) == raw


def test_delete_removes_names_matching_deletable(server, tmp_path):
    client = client_for(server, tmp_path)
    client.store(make_file(tmp_path / "a", b"mine"), "Sandbox-alice-1.fits")
    client.store(make_file(tmp_path / "b", b"mine too"), "Sandbox-alice-2.fits")
    assert client.retrieve("Sandbox-alice-1.fits").read_bytes() == b"mine"
    client.delete("Sandbox-alice-1.fits")
    assert not client.exists("Sandbox-alice-1.fits")
    assert not client.cache.storage.exists("Sandbox-alice-1.fits")
    with pytest.raises(MissingFileError):
        client.retrieve("Sandbox-alice-1.fits")
    status, _, _ = request(server, "DELETE", "/files/Sandbox-alice-2.fits", token=TOKEN)
    assert status == 204
    status, _, _ = request(server, "DELETE", "/files/Sandbox-alice-2.fits", token=TOKEN)
    assert status == 404
    assert Storage(server.root).list() == []


def test_server_without_a_token_is_read_only(start_server, tmp_path):
    root = tmp_path / "root"
    Storage(root, deletable=["*"]).store(make_file(tmp_path / "a", b"published"), NAME)
    server = start_server(root, token=None, deletable=["*"])
    status, _, body = request(server, "GET", "/")
    assert json.loads(body)["read_only"] is True
    client = client_for(server, tmp_path)  # even a client with a token may not write
    assert client.retrieve(NAME).read_bytes() == b"published"
    with pytest.raises(PermissionDeniedError, match="read-only"):
        client.store(make_file(tmp_path / "b", b"new"), "New.fits")
    with pytest.raises(PermissionDeniedError, match="read-only"):
        client.delete(NAME)
    for method in ("PUT", "DELETE"):
        status, _, body = request(server, method, "/files/New.fits", b"new", token=TOKEN)
        assert status == 403 and error_of(body) == "PermissionDeniedError"
    assert Storage(root).list() == [NAME]


def test_missing_file_is_404(server, tmp_path):
    status, _, body = request(server, "GET", "/files/Not-there.fits")
    assert status == 404 and error_of(body) == "MissingFileError"
    with pytest.raises(MissingFileError, match="Not-there.fits"):
        client_for(server, tmp_path).retrieve("Not-there.fits")
    assert not client_for(server, tmp_path).exists("Not-there.fits")


def test_kill_during_upload_leaves_nothing_under_the_name(server, tmp_path):
    """A server killed while receiving leaves at most a temporary file: the name stays
    free, and a restarted server accepts a fresh upload of it."""
    announced, sent = 200 << 20, 4 << 20
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        sock.sendall(f"PUT /files/{NAME} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nContent-Length: {announced}\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n".encode())
        chunk = os.urandom(1 << 16)
        for _ in range(sent // len(chunk)):
            sock.sendall(chunk)
        uploads = server.root / ".tmp"
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size for p in uploads.iterdir()):  # it is writing
            assert time.monotonic() < deadline, f"no upload began:\n{server.stderr()}"
            time.sleep(0.01)
        server.kill()
    finally:
        sock.close()
    storage = Storage(server.root)
    assert not storage.exists(NAME)
    assert not storage.path(NAME).parent.exists()  # not even a record
    assert storage.list() == []
    partial = [p.stat().st_size for p in (server.root / ".tmp").iterdir()]
    assert len(partial) == 1 and 0 < partial[0] < announced  # kept until swept
    restarted = server.restart()
    status, _, body = request(restarted, "GET", f"/files/{NAME}")
    assert status == 404 and error_of(body) == "MissingFileError"
    source = make_file(tmp_path / "source", os.urandom(3 << 20))
    info = client_for(restarted, tmp_path).store(source, NAME)
    assert info.checksum == file_checksum(source)
    assert client_for(restarted, tmp_path).retrieve(NAME).read_bytes() == source.read_bytes()


def test_client_going_away_during_upload_leaves_nothing(server, tmp_path):
    """An upload cut short by the client is thrown away, temporary file and all."""
    uploads = server.root / ".tmp"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"PUT /files/{NAME} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nContent-Length: {100 << 20}\r\n\r\n"
                     .encode())
        sock.sendall(os.urandom(3 << 20))
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size for p in uploads.iterdir()):
            assert time.monotonic() < deadline, f"no upload began:\n{server.stderr()}"
            time.sleep(0.01)
    deadline = time.monotonic() + 30
    while any(uploads.iterdir()):  # the server notices, then removes the upload
        assert time.monotonic() < deadline, f"the upload was kept:\n{server.stderr()}"
        time.sleep(0.01)
    assert not Storage(server.root).exists(NAME)
    status, _, _ = request(server, "GET", f"/files/{NAME}")
    assert status == 404
    assert server.process.poll() is None
