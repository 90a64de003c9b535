"""The web application: `create_app` assembles its routes, middleware and error
handlers from lists, and `serve` runs it under uvicorn (``awe web``)."""

import contextlib
import os
import secrets
from pathlib import Path

import fastapi
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

import persistence
import targets

from .. import __version__
from ..config import profile
from ..environment import acting_as, connect, make_dpu
from . import accounts  # noqa: F401  (its Credential table)
from .session import ActingMiddleware, Viewer

__all__ = ["create_app", "serve", "templates"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
"""The pages' Jinja2 templates; every page extends ``base.html``."""
templates.env.globals["privileges_levels"] = persistence.PRIVILEGES

SESSION_DAYS = 7


def create_app(settings=None, *, database_url=None, run_jobs=True):
    """The ASGI application of the web pages and their JSON API.

    Parameters
    ----------
    settings : `awe.config.Profile`, optional
        The configuration (by default the one in force): its database, data servers
        and DPU, which runs the jobs.
    database_url : `str`, optional
        A database to serve instead of the configured one.
    run_jobs : `bool`
        Start the job runner in the server (one per installation runs jobs).

    Examples
    --------
    >>> import uvicorn
    >>> uvicorn.run(create_app(), host="127.0.0.1", port=8080)  # doctest: +SKIP
    """
    from . import calts, objects, processing, trend, vo

    settings = settings or profile()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        db = connect(database_url, context=persistence.Context(user=None), settings=settings)
        if db.row_level_security:
            raise RuntimeError(
                f"awe web connected to {db.display_url} as a user's own role, whose rows "
                "PostgreSQL filters: the server works for every user, so connect it as "
                "the database's owner (the role awe admin uses)")
        runner = None
        if run_jobs:
            runner = targets.JobRunner(lambda context: acting_as(context, settings),
                                       dpu=make_dpu(settings=settings))
            runner.start()
        app.state.db, app.state.runner, app.state.settings = db, runner, settings
        try:
            yield
        finally:
            if runner is not None:
                runner.stop(timeout=5)
            db.close()

    app = fastapi.FastAPI(
        title="AWE", version=__version__, lifespan=lifespan,
        description="Target processing, jobs, products and their lineage, quality "
                    "control and cone search of an AWE installation. Calls that change "
                    "something need a session (POST /login) and its CSRF token in the "
                    "X-CSRF-Token header (GET /api/context gives it).")
    for module in (processing, objects, calts, trend, vo):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(ActingMiddleware, settings=settings)
    app.add_middleware(SessionMiddleware, secret_key=_secret_key(settings),
                       session_cookie="awe_session", max_age=SESSION_DAYS * 86400,
                       same_site="lax", https_only=False)
    for error, handler in _ERROR_HANDLERS:
        app.add_exception_handler(error, handler)
    app.openapi = _documenting_errors(app.openapi)
    return app


ERROR_SCHEMA = {
    "title": "Error", "type": "object", "required": ["error", "message"],
    "properties": {"error": {"type": "string", "description": "What kind: not found, ..."},
                   "message": {"type": "string",
                               "description": "What was wrong, and what to do"}}}
"""Every error of the API, invalid input (422) included."""


def _documenting_errors(build):
    """The OpenAPI document with the app's error shape where FastAPI documents its own
    for invalid input (``HTTPValidationError``), which `_validation_error` replaces."""
    def openapi():
        document = build()
        schemas = document.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = ERROR_SCHEMA
            schemas.pop("ValidationError", None)
        return document
    return openapi


def serve(host="127.0.0.1", port=8080, *, settings=None, log_level="info"):
    """Serve `create_app` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)


def _secret_key(settings):
    """The key that signs session cookies: ``web-secret`` in the data home, made on
    first use (readable by its owner only), so sessions survive a restart."""
    path = settings.home / "web-secret"
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        with open(path, "x", opener=lambda p, flags: os.open(p, flags, 0o600)) as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


# -- errors ----------------------------------------------------------------------------

def _wants_json(request):
    return request.url.path.startswith(("/api/", "/openapi")) or \
        "application/json" in request.headers.get("accept", "") and \
        "text/html" not in request.headers.get("accept", "")


def error_response(request, status, message):
    """The error as JSON ``{"error": ..., "message": ...}`` for the API, a page
    otherwise."""
    if _wants_json(request):
        return JSONResponse({"error": _STATUS_NAMES.get(status, "error"),
                             "message": message}, status_code=status)
    return templates.TemplateResponse(request, "error.html", {
        "viewer": Viewer(request), "status": status, "error": message},
        status_code=status)


_STATUS_NAMES = {400: "bad request", 401: "not logged in", 403: "forbidden",
                 404: "not found", 409: "conflict", 422: "invalid input"}


async def _http_error(request: Request, err: StarletteHTTPException):
    response = error_response(request, err.status_code, str(err.detail))
    for name, value in (err.headers or {}).items():
        response.headers[name] = value
    return response


async def _validation_error(request: Request, err: RequestValidationError):
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                         for e in err.errors())
    return error_response(request, 422, f"invalid input: {problems}")


def _status_of(err):
    if isinstance(err, PermissionError):
        return 403
    if isinstance(err, persistence.ObjectNotFoundError):
        return 404
    return 400


async def _user_error(request: Request, err: Exception):
    """What a user can fix (a bad selection, a missing object, a right they lack)."""
    return error_response(request, _status_of(err), " ".join(str(err).split()))


_ERROR_HANDLERS = [
    (StarletteHTTPException, _http_error),  # FastAPI's HTTPException and the router's 404
    (RequestValidationError, _validation_error),
    (PermissionError, _user_error),
    (persistence.ObjectNotFoundError, _user_error),
    (ValueError, _user_error),
    (targets.TargetError, _user_error),
]
