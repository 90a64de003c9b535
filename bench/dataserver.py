"""Data server throughput over loopback, side by side with copying on the same disk.

Stores and retrieves 16 files of 64 MB through a real ``awe dataserver serve`` process
on 127.0.0.1 with `dataserver.Client` (each retrieve verifies the checksum; each store
hashes and fsyncs on the server), with 1 and 8 concurrent clients, and copies the same
files with `shutil.copyfile` on the same disk. A store is durable (fsynced before it
becomes visible), so the uploads are also compared with a durable copy: `shutil.copyfile`
then fsync. Each figure is the median of ``--repeat`` runs after one warm-up run,
interleaved so that the disk's moods hit all alike.

Run it with ``python bench/dataserver.py [--dir DIR] [--files 16] [--mb 64]``.
"""

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# This script shares its name with the package it measures: import the package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
import dataserver  # noqa: E402

TOKEN = "bench-token"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="scratch directory on the disk to test (default: a "
                        "temporary directory)")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="awe-bench-") as scratch:
        run(Path(scratch), args.files, args.mb, args.repeat)


def run(scratch, n_files, mb, repeat):
    sources = make_files(scratch / "sources", n_files, mb)
    total_mb = n_files * mb
    with data_server(scratch / "server") as url:
        client = dataserver.Client(url, token=TOKEN, cache_dir=scratch / "cache")
        print(f"{n_files} files of {mb} MB; server {url}; scratch {scratch}")
        print(f"{'clients':>7}  {'copyfile MB/s':>13}  {'upload MB/s':>11}  {'ratio':>5}  "
              f"{'download MB/s':>13}  {'ratio':>5}  {'copy+fsync MB/s':>15}  "
              f"{'upload ratio':>12}")
        for clients in (1, 8):
            copy, up, down, durable = [], [], [], []
            for attempt in range(-1, repeat):  # attempt -1 warms up and is not counted
                copy.append(total_mb / timed(clients, sources, lambda i, src: shutil.copyfile(
                    src, scratch / f"copy-{i}")))
                durable.append(total_mb / timed(clients, sources, lambda i, src: durable_copy(
                    src, scratch / f"durable-{i}")))
                for i in range(n_files):
                    (scratch / f"copy-{i}").unlink()
                    (scratch / f"durable-{i}").unlink()
                names = [f"bench-{clients}-{attempt}-{i}.bin" for i in range(n_files)]
                up.append(total_mb / timed(clients, sources, lambda i, src: client.store(
                    src, names[i])))
                down.append(total_mb / timed(clients, sources, lambda i, src: client.retrieve(
                    names[i])))
                for name in names:
                    client.delete(name)
            copy, up, down, durable = (statistics.median(x[1:])
                                       for x in (copy, up, down, durable))
            print(f"{clients:>7}  {copy:>13.0f}  {up:>11.0f}  {up / copy:>5.2f}  "
                  f"{down:>13.0f}  {down / copy:>5.2f}  {durable:>15.0f}  "
                  f"{up / durable:>12.2f}")


def durable_copy(source, dest):
    """`shutil.copyfile` and an fsync: a copy that survives a power cut, as a store is."""
    shutil.copyfile(source, dest)
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def timed(clients, sources, work):
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(work, range(len(sources)), sources))
    return time.perf_counter() - start


def make_files(directory, n_files, mb):
    directory.mkdir()
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n_files):
        path = directory / f"source-{i}.bin"
        rng.integers(0, 256, mb << 20, dtype=np.uint8).tofile(path)
        paths.append(path)
    return paths


@contextlib.contextmanager
def data_server(root):
    """A real ``awe dataserver serve`` process on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, AWE_DATASERVER_TOKEN=TOKEN)
    process = subprocess.Popen(
        [sys.executable, "-m", "awe", "dataserver", "serve", "--root", str(root),
         "--port", str(port), "--deletable", "bench-*", "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url + "/", timeout=1).read()
                break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
