"""A file much larger than the memory either side may use goes through whole: the
client and the server stream it in chunks and never hold it."""

import json
import subprocess
import sys
from pathlib import Path

from dataserver import Storage, file_checksum
from tests.dataserver.conftest import TOKEN, write_random

SIZE = (256 << 20) + 12345
"""Bytes of the file: 256 MiB and a ragged end."""

PEAK_RSS_LIMIT = 128 << 20
"""The most resident memory either process may ever have used. Half the file's size,
yet far above what they need: about 25 MiB for a client and 45 MiB for a server
(Python, uvicorn, the imports) plus a few 1 MiB buffers."""

CLIENT_SCRIPT = r"""
import json
import sys

import dataserver

url, token, source, name, cache_dir, server_pid = sys.argv[1:]


def peak_rss(pid="self"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


client = dataserver.Client(url, token=token, cache_dir=cache_dir)
info = client.store(source, name)
path = client.retrieve(name)
print(json.dumps({"checksum": info.checksum, "size": info.size, "path": str(path),
                  "client_peak": peak_rss(), "server_peak": peak_rss(server_pid)}))
"""


def test_large_file_round_trip_in_bounded_memory(server, tmp_path):
    """The client runs in its own process so that its peak memory is its own, not the
    test runner's (which made the file with numpy)."""
    name = "Large-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits"
    source = write_random(tmp_path / "large.fits", SIZE, seed=256)
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, server.url, TOKEN, str(source), name,
         str(tmp_path / "cache"), str(server.pid)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, f"client failed:\n{done.stderr}\nserver:\n{server.stderr()}"
    result = json.loads(done.stdout)
    expected = file_checksum(source)
    assert (result["size"], result["checksum"]) == (SIZE, expected)
    retrieved = Path(result["path"])
    assert retrieved.is_relative_to(tmp_path / "cache")
    assert retrieved.stat().st_size == SIZE and file_checksum(retrieved) == expected
    assert Storage(server.root).info(name).checksum == expected
    peaks = (f"peak RSS: client {result['client_peak'] >> 20} MiB, "
             f"server {result['server_peak'] >> 20} MiB")
    assert result["client_peak"] < PEAK_RSS_LIMIT, peaks
    assert result["server_peak"] < PEAK_RSS_LIMIT, peaks
