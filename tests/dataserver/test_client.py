"""The client: concurrency, its cache, corruption, several servers, failing networks,
and a plain directory in place of servers."""

import os
import socket
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dataserver import (Cache, ChecksumMismatchError, Client, ConflictError,
                        MissingFileError, ServerUnavailableError, Storage, file_checksum)
from tests.dataserver.conftest import TOKEN, corrupt

NAME = "Raw-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits"


def make_file(path, content):
    path.write_bytes(content)
    return path


def random_bytes(size, seed):
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def test_parallel_uploads_then_downloads_with_one_client(server, tmp_path):
    """One client shared by 16 threads: each thread has its own connection."""
    client = Client(server.url, token=TOKEN, cache_dir=tmp_path / "cache")
    contents = {f"Parallel-{i:02d}.fits": random_bytes((1 << 20) + 1000 * i, seed=i)
                for i in range(16)}
    sources = {name: make_file(tmp_path / f"src-{name}", content)
               for name, content in contents.items()}
    with ThreadPoolExecutor(16) as pool:
        infos = list(pool.map(lambda name: client.store(sources[name], name), contents))
    for info, (name, source) in zip(infos, sources.items()):
        assert (info.name, info.checksum) == (name, file_checksum(source))
    assert Storage(server.root).list() == sorted(contents)
    with ThreadPoolExecutor(16) as pool:
        paths = list(pool.map(client.retrieve, contents))
    for path, (name, content) in zip(paths, contents.items()):
        assert path.name == name and path.read_bytes() == content
    assert os.listdir(server.root / ".tmp") == []
    assert os.listdir(tmp_path / "cache" / ".tmp") == []


def test_corrupted_cached_copy_is_fetched_again(server, tmp_path):
    content = random_bytes(100_000, seed=1)
    client = Client(server.url, token=TOKEN, cache_dir=tmp_path / "cache")
    info = client.store(make_file(tmp_path / "source", content), NAME)
    cached = client.retrieve(NAME)
    assert cached.is_relative_to(tmp_path / "cache") and cached.read_bytes() == content
    corrupt(cached, offset=54321)
    assert cached.read_bytes() != content
    again = client.retrieve(NAME)
    assert again.read_bytes() == content
    assert file_checksum(again) == info.checksum
    assert cached.read_bytes() == content  # the cache holds the good bytes now
    assert Cache(tmp_path / "cache").storage.verify(NAME).checksum == info.checksum


def test_corrupted_server_copy_is_reported_and_not_cached(server, tmp_path):
    content = random_bytes(100_000, seed=2)
    Client(server.url, token=TOKEN, cache_dir=tmp_path / "writer-cache").store(
        make_file(tmp_path / "source", content), NAME)
    on_server = Storage(server.root).path(NAME)
    recorded = Storage(server.root).info(NAME).checksum
    corrupt(on_server, offset=777)
    actual = file_checksum(on_server)
    client = Client(server.url, token=TOKEN, cache_dir=tmp_path / "cache")
    with pytest.raises(ChecksumMismatchError) as caught:
        client.retrieve(NAME)
    err = caught.value
    message = str(err)
    assert NAME in message and server.url in message
    assert recorded in message and actual in message
    assert (err.name, err.expected, err.actual) == (NAME, recorded, actual)
    cache = Storage(tmp_path / "cache")
    assert not cache.exists(NAME) and cache.list() == []
    assert os.listdir(cache.root / ".tmp") == []


def test_checksum_expected_elsewhere_is_checked_and_the_client_stays_usable(
        server, tmp_path):
    """A server copy whose checksum differs from the database's is refused before its
    bytes are read; the connection, left mid-answer, must not fail the next request
    (with no retries to hide it)."""
    client = Client(server.url, token=TOKEN, cache_dir=tmp_path / "cache", retries=0)
    info = client.store(make_file(tmp_path / "source", random_bytes(300_000, seed=4)), NAME)
    other = file_checksum(make_file(tmp_path / "other", b"what the database recorded"))
    with pytest.raises(ChecksumMismatchError) as caught:
        client.retrieve(NAME, checksum=other)
    assert (caught.value.expected, caught.value.actual) == (other, info.checksum)
    assert not client.cache.storage.exists(NAME)
    assert client.retrieve(NAME, checksum=info.checksum).read_bytes() == (
        tmp_path / "source").read_bytes()


def test_file_missing_on_the_first_server_is_found_on_the_second(start_server, tmp_path):
    first, second = start_server(), start_server()
    assert first.root != second.root
    only_second = make_file(tmp_path / "second", b"on the second server only")
    Client(second.url, token=TOKEN, cache_dir=tmp_path / "c0").store(only_second, NAME)
    client = Client([first.url, second.url], token=TOKEN, cache_dir=tmp_path / "cache",
                    retries=1, backoff=0.05)
    assert client.retrieve(NAME).read_bytes() == b"on the second server only"
    assert client.info(NAME).checksum == file_checksum(only_second)
    with pytest.raises(MissingFileError) as caught:
        client.retrieve("Nowhere.fits")
    assert first.url in str(caught.value) and second.url in str(caught.value)
    assert not client.exists("Nowhere.fits")


def test_retrieve_falls_back_when_the_first_server_is_down(server, tmp_path):
    first, second = server, server.start_another()
    source = make_file(tmp_path / "source", random_bytes(50_000, seed=3))
    for server in (first, second):
        Client(server.url, token=TOKEN, cache_dir=tmp_path / "c0").store(source, NAME)
    client = Client([first.url, second.url], token=TOKEN, cache_dir=tmp_path / "cache",
                    retries=1, backoff=0.05)
    assert client.list() == [NAME]  # a kept-alive connection to the first is now open
    first.kill()
    path = client.retrieve(NAME)
    assert path.read_bytes() == source.read_bytes()
    with pytest.raises(ServerUnavailableError, match=first.url):
        client.retrieve("Nowhere.fits")  # not 'missing': the first might hold it


def test_network_errors_are_retried_then_reported(tmp_path):
    """A port bound but not listening refuses connections, deterministically."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        client = Client(url, token=TOKEN, cache_dir=tmp_path / "cache", retries=2,
                        backoff=0.01)
        with pytest.raises(ServerUnavailableError) as caught:
            client.retrieve(NAME)
        message = str(caught.value)
        assert url in message and NAME in message and "3 attempts" in message
        with pytest.raises(ServerUnavailableError, match="3 attempts"):
            client.store(make_file(tmp_path / "source", b"x"), NAME)
    assert Storage(tmp_path / "cache").list() == []


def test_cache_evicts_the_least_recently_used(server, tmp_path):
    """Names are chosen so that files used at the same clock tick (coarse file times)
    still sort in the order they were used; the test then does not depend on the
    filesystem's timestamp resolution."""
    size = 10_000
    client = Client(server.url, token=TOKEN, cache_dir=tmp_path / "cache",
                    cache_size=3 * size)
    first, second, third, fourth = "C-first", "A-second", "B-third", "D-fourth"
    contents = {}
    for seed, name in enumerate((first, second, third, fourth)):
        contents[name] = random_bytes(size, seed)
        client.store(make_file(tmp_path / name, contents[name]), name)
    for name in (first, second, third):
        client.retrieve(name)
    assert client.retrieve(first).read_bytes() == contents[first]  # a hit: used again
    client.retrieve(fourth)
    cache = client.cache.storage
    assert cache.list() == sorted([first, third, fourth])  # the second went
    assert sum(cache.path(n).stat().st_size for n in cache.list()) <= 3 * size
    for name in cache.list():
        assert cache.path(name).read_bytes() == contents[name]
    assert client.retrieve(second).read_bytes() == contents[second]  # fetched again


def test_file_larger_than_the_cache_is_still_retrieved(server, tmp_path):
    client = Client(server.url, token=TOKEN, cache_dir=tmp_path / "cache",
                    cache_size=30_000)
    small = random_bytes(10_000, seed=1)
    big = random_bytes(100_000, seed=2)
    client.store(make_file(tmp_path / "small", small), "Small.fits")
    client.store(make_file(tmp_path / "big", big), "Big.fits")
    client.retrieve("Small.fits")
    path = client.retrieve("Big.fits")
    assert path.read_bytes() == big
    assert client.cache.storage.list() == ["Big.fits"]  # it pushed out everything else
    assert client.retrieve("Small.fits").read_bytes() == small


def test_local_directory_client(tmp_path):
    """With a directory, the client behaves as with a server, without a cache."""
    client = Client(tmp_path / "files")
    source = make_file(tmp_path / "source", b"local bytes")
    info = client.store(source, NAME)
    assert (info.name, info.size, info.checksum) == (NAME, 11, file_checksum(source))
    assert client.store(source, NAME) == info  # identical again: nothing happens
    assert client.exists(NAME) and not client.exists("Other.fits")
    assert client.info(NAME) == info
    assert client.list() == [NAME] and client.list("Raw-") == [NAME] and client.list("X") == []
    path = client.retrieve(NAME)
    assert path == Storage(tmp_path / "files").path(NAME)  # no copy: the stored file
    assert path.read_bytes() == b"local bytes"
    copy = client.retrieve(NAME, dest=tmp_path)
    assert copy == tmp_path / NAME and copy.read_bytes() == b"local bytes"
    copy.write_bytes(b"changed")  # a copy the caller may change ...
    assert os.access(copy, os.W_OK) and copy.stat().st_mode & 0o200
    assert client.retrieve(NAME).read_bytes() == b"local bytes"  # ... not the original
    named = client.retrieve(NAME, dest=tmp_path / "mine.fits")
    assert named.read_bytes() == b"local bytes"
    with pytest.raises(ConflictError):
        client.store(make_file(tmp_path / "other", b"other bytes"), NAME)
    assert client.retrieve(NAME).read_bytes() == b"local bytes"
    with pytest.raises(MissingFileError):
        client.retrieve("Other.fits")
    with pytest.raises(MissingFileError):
        client.info("Other.fits")
    assert not (tmp_path / "xdg-cache").exists()  # a directory needs no cache


def test_local_directory_client_detects_corruption(tmp_path):
    client = Client(tmp_path / "files")
    info = client.store(make_file(tmp_path / "source", b"local bytes"), NAME)
    corrupt(Storage(tmp_path / "files").path(NAME))
    with pytest.raises(ChecksumMismatchError) as caught:
        client.retrieve(NAME)
    assert caught.value.expected == info.checksum
