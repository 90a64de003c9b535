"""A site to test the web on, per backend: users of two projects, a simulated night
ingested by a KIDS calibrator and partly reduced by her, built through the real
``awe`` commands; an in-process client of its app, and a real ``awe web`` server.

Users (password ``PASSWORD``): ``alice`` calibrator of KIDS (she ingested and reduced
the night: everything is hers, privileges 2), ``carol`` manager of KIDS, ``bob``
member of VIKING only.
"""

import contextlib
import json
import os
import socket
import subprocess
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa

from tests.awe.conftest import awe_command, awe_environment
from tests.conftest import _autocommit_engine

PASSWORD = "correct horse battery"
USERS = {"alice": ("KIDS", "calibrator"), "carol": ("KIDS", "manager"),
         "bob": ("VIKING", "member")}


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory, simulated_night):
    """A data home (and database) as described above; yields a `Site`."""
    home = tmp_path_factory.mktemp(f"site-{request.param}") / "home"
    with _database(request, home) as url:
        site = Site(request.param, home, url)
        for name, (project, role) in USERS.items():
            site.awe("admin", "add-user", name, "--project", project, "--role", role,
                     "--password")
        raw = sorted(str(p) for p in simulated_night.raw)
        site.awe("ingest", *raw, str(simulated_night.reference), user="alice")
        site.awe("-c", _REDUCE, user="alice")
        site.facts = json.loads((home / "facts.json").read_text())
        yield site


_REDUCE = """
import json, numpy as np
frames = list(RawScienceFrame.chip.name == 'ccd1')
frame = frames[0]
ra, dec = np.mean(frame.footprint[::2]), np.mean(frame.footprint[1::2])
for raw in RawScienceFrame.covering(ra, dec, 0.02 + 1 / 60):
    exposure = CalibratedExposure.get(raw=raw)
    if exposure.quality_flags:  # alice looks and judges it usable
        context.set_valid(exposure, 1, comment='looked at it: fine for source lists')
objects = Object.get(ra=ra, dec=dec, radius=0.02)
flat = MasterFlat.all().first()
facts = dict(ra=float(ra), dec=float(dec), frame=frame.object_id, night=frame.night,
             filter=frame.filter, objects=[o.object_id for o in objects],
             flat=flat.object_id, flat_chip=flat.chip.name, flat_filter=flat.filter,
             exposure=CalibratedExposure.all().first().object_id,
             sourcelist=SourceList.all().first().object_id)
open(str(context_home / 'facts.json'), 'w').write(json.dumps(facts))
""".replace("context_home", "__import__('awe').config.awe_home()")


class Site:
    """A test site: its data home, database URL, and how to run ``awe`` on it."""

    def __init__(self, backend, home, url):
        self.backend, self.home, self.url = backend, home, url
        self.facts = {}

    def environment(self, user=None, **variables):
        env = awe_environment(self.home, AWE_DATABASE_URL=self.url, AWE_PASSWORD=PASSWORD,
                              **variables)
        if user is not None:
            project, _ = USERS[user]
            env.update(AWE_USER=user, AWE_PROJECT=project, AWE_PRIVILEGES="2")
        return env

    def awe(self, *args, user=None, timeout=900):
        """Run ``awe ARGS`` on the site (as ``user`` in their project, privileges 2)."""
        result = subprocess.run([*awe_command(), *args], env=self.environment(user),
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"awe {' '.join(args)[:200]}: {result.stderr}"
        return result.stdout

    @contextlib.contextmanager
    def client(self, monkeypatch, run_jobs=True):
        """An in-process client of the site's app (starlette's TestClient)."""
        from fastapi.testclient import TestClient

        from awe.web import create_app

        for name, value in self.environment().items():
            if name.startswith("AWE_"):
                monkeypatch.setenv(name, value)
        with TestClient(create_app(run_jobs=run_jobs)) as client:
            yield client


@contextlib.contextmanager
def _database(request, home):
    """The site's database URL: SQLite in the home, or a PostgreSQL database of its
    own, made beside the tests' one and dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{home}/awe.db"
        return
    base = sa.make_url(request.getfixturevalue("postgresql_url"))
    name = f"awe_web_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    server = _autocommit_engine(base.set(database="postgres"))
    with server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def log_in(client, user, password=PASSWORD):
    """Log ``client`` in as ``user``; return the session's CSRF token."""
    token = client.get("/api/context").json()["csrf_token"]
    response = client.post("/login", data={"username": user, "password": password,
                                           "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    context = client.get("/api/context").json()
    assert context["user"] == user
    return context["csrf_token"]


def api_plan(client, **request):
    """``POST /api/plan`` with ``request`` and the session's CSRF token."""
    token = client.get("/api/context").json()["csrf_token"]
    return client.post("/api/plan", json=request, headers={"X-CSRF-Token": token})


@pytest.fixture
def app_client(site, monkeypatch):
    """An in-process client of the site's app, not logged in (jobs run in it)."""
    with site.client(monkeypatch) as client:
        yield client


class WebServer:
    """A real ``awe web`` process on loopback."""

    def __init__(self, site, port, process):
        self.site, self.port, self.process = site, port, process
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
def web_server(site, tmp_path):
    """``awe web`` serving the site on a free port of loopback; stopped after."""
    with start_web_server(site, tmp_path / "web.log") as server:
        yield server


@contextlib.contextmanager
def start_web_server(site, log):
    """Start ``awe web`` on the site, wait until it answers, stop it at the end."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with open(log, "w") as out:
        process = subprocess.Popen([*awe_command(), "web", "--port", str(port),
                                    "--log-level", "warning"],
                                   env=site.environment(), stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/context").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"awe web did not start: {open(log).read()}")
                time.sleep(0.2)
            yield WebServer(site, port, process)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

