"""Who is asking: the session cookie's user, project and privileges, put in force for
the whole request, and the CSRF token every form and API call that changes something
carries.

The session is a signed cookie (Starlette's `SessionMiddleware`): ``user``,
``project``, ``privileges`` and ``csrf``. A request without a logged-in user works as
someone not logged in, who sees world-visible objects (privileges 4) only.
"""

import hmac
import secrets

from fastapi import HTTPException, Request

import persistence

from ..context_handle import switched
from ..environment import acting_as

__all__ = ["ActingMiddleware", "Viewer", "login", "logout", "require_csrf",
           "switch_context", "viewer"]

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class ActingMiddleware:
    """Puts the session's context in force for the request (`awe.environment.acting_as`):
    every query, plan and commit in it is the session user's."""

    def __init__(self, app, settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = scope.get("session")
        if session is not None and not session.get("csrf"):
            session["csrf"] = secrets.token_urlsafe(32)
        context = _context_of(session or {})
        with acting_as(context, self.settings):
            await self.app(scope, receive, send)


def _context_of(session):
    user = session.get("user")
    if not user:
        return persistence.Context(user=None, project="default", privileges=1)
    return persistence.Context(user=user, project=session.get("project") or "default",
                               privileges=int(session.get("privileges") or 1))


class Viewer:
    """The request's user as the pages see them: name, project, role, privileges."""

    def __init__(self, request):
        db = persistence.current_database()
        context = db.context
        self.request = request
        self.user = context.user
        self.project = context.project
        self.privileges = context.privileges
        self.projects = db.memberships(context.user) if context.user else {}
        self.role = self.projects.get(self.project)
        self.csrf = request.session.get("csrf", "")

    @property
    def logged_in(self):
        return self.user is not None

    def require_login(self):
        """Raise 401 unless someone is logged in."""
        if not self.logged_in:
            raise HTTPException(401, "log in first: this needs a user (POST /login)")
        return self

    def may_judge(self, obj):
        """Whether the user may set the validity of ``obj`` (`targets.curation`)."""
        if not self.logged_in:
            return False
        if obj.privileges == 1:
            return obj.owner == self.user
        return self.projects.get(obj.project) in ("calibrator", "manager")

    def is_manager(self):
        return self.role == "manager"


def viewer(request: Request):
    """FastAPI dependency: the `Viewer` of the request."""
    return Viewer(request)


async def require_csrf(request: Request):
    """FastAPI dependency of every POST: the session's CSRF token must come back, as
    the ``X-CSRF-Token`` header or the ``csrf_token`` form field."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(
            sent.encode(), expected.encode()):
        raise HTTPException(403, "the CSRF token is missing or wrong: reload the page "
                                 f"and send the form again (API: the {CSRF_HEADER} "
                                 "header, from GET /api/context)")


def login(request, db, name):
    """Start a session for ``name`` (whose password was checked) in their default
    project, at the privileges their role there allows."""
    with db.acting_as(persistence.Context(user=name)):
        user = (persistence.User.name == name).first()
    db.forget_memberships()  # roles changed by awe admin since the last login count
    memberships = db.memberships(name)
    project = user.default_project if user is not None and user.default_project else "default"
    if project not in memberships and memberships:
        project = sorted(memberships)[0]
    request.session.clear()
    request.session.update(user=name, project=project,
                           privileges=2 if project in memberships else 1,
                           csrf=secrets.token_urlsafe(32))


def logout(request):
    request.session.clear()
    request.session["csrf"] = secrets.token_urlsafe(32)


def switch_context(request, db, *, project=None, privileges=None):
    """Move the session to another project or privileges (`awe.context_handle.switched`
    checks that the user may)."""
    context = switched(db, db.context, project=project, privileges=privileges)
    request.session.update(project=context.project, privileges=context.privileges)
    return context
