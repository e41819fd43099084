"""The demo app: a login form, a page embedding Qlik (iframe + mashup), and a logout.

Order of the middleware matters: the session middleware is OUTSIDE `QlikSSOMiddleware`, so
`scope["session"]` is set when the resolver reads it. The app's session is a signed cookie
(Starlette's `SessionMiddleware`, itsdangerous); every POST form carries a per-session CSRF token
and must come from the app's own origin.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from ..auth.header import HeaderAuth
from ..core import QlikSSO
from ..errors import QlikError
from ..identity import QlikIdentity
from ..middleware import QlikSSOMiddleware
from ..offload.front import FrontProxy
from ..target import QlikTarget
from .pages import EMBED_KIT_PATH, home_page, login_page
from .settings import DEMO_DIRECTORY, DEMO_HEADER, DEMO_PASSWORD, DEMO_PREFIX, DEMO_USERS

__all__ = ["build_demo_app", "demo_resolver"]

_STATIC = Path(__file__).parent / "static"
_NO_STORE = {"cache-control": "no-store"}
_MAX_FORM = 16 * 1024


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form (the demo's only kind), without python-multipart; {} when bigger than
    16 KiB or of another type, which then fails the CSRF check."""
    if request.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return {}
    try:
        return dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=10))
    except ValueError:  # more fields than any demo form has
        return {}


def demo_resolver(conn: HTTPConnection) -> QlikIdentity | None:
    """The logged-in demo user as `ACME\\<user>`, from the app's signed session cookie."""
    user = conn.session.get("user")
    return QlikIdentity(DEMO_DIRECTORY, user) if isinstance(user, str) else None


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


def _form_allowed(request: Request, token: object) -> bool:
    """Same-origin POST carrying this session's CSRF token."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return False
    expected = request.session.get("csrf")
    return (
        isinstance(token, str)
        and isinstance(expected, str)
        and hmac.compare_digest(token.encode(), expected.encode())
    )


def _safe_next(value: object) -> str:
    # Only local paths: "//evil.example" and "/\\evil" would leave the site.
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


async def home(request: Request) -> Response:
    user = request.session.get("user")
    if not isinstance(user, str):
        return RedirectResponse("/login", 303)
    embed_host = None
    if request.app.state.embed_kit:
        embed_host = f"{request.url.scheme}://{request.url.netloc}/{DEMO_PREFIX}"
    page = home_page(user, _csrf(request), embed_host=embed_host)
    return HTMLResponse(page, headers=_NO_STORE)


async def login_form(request: Request) -> Response:
    next_path = _safe_next(request.query_params.get("next"))
    return HTMLResponse(login_page(_csrf(request), next_path=next_path), headers=_NO_STORE)


async def login(request: Request) -> Response:
    form = await _form(request)
    if not _form_allowed(request, form.get("csrf")):
        return HTMLResponse(
            login_page(_csrf(request), error="The form expired; please try again."), 400
        )
    username, password = form.get("username"), form.get("password")
    known = isinstance(username, str) and username in DEMO_USERS
    if not known or not isinstance(password, str) or password != DEMO_PASSWORD:
        page = login_page(_csrf(request), error="Unknown user or wrong password.")
        return HTMLResponse(page, 401, headers=_NO_STORE)
    request.session.clear()  # a fresh session (and CSRF token) on login
    request.session["user"] = username
    return RedirectResponse(_safe_next(form.get("next")), 303)


async def logout(request: Request) -> Response:
    form = await _form(request)
    if not _form_allowed(request, form.get("csrf")):
        return HTMLResponse("<p>Refused: missing or wrong CSRF token.</p>", 403)
    identity = demo_resolver(request)
    request.session.clear()
    if identity is not None:
        sso: QlikSSO = request.scope["qlik_sso"]
        # A Qlik failure is already logged by QlikSSO; the app session is gone either way.
        with contextlib.suppress(QlikError):
            await sso.logout(identity, host=request.headers.get("host"))
    return RedirectResponse("/login", 303)


def build_demo_app(
    qlik_url: str,
    *,
    secret_key: str | None = None,
    front_proxy: FrontProxy | None = None,
    embed_kit: Path | None = None,
) -> ASGIApp:
    """The demo app in front of the Qlik proxy at `qlik_url` (prefix `sso`, header `hdr-usr`);
    `front_proxy`: behind nginx or Caddy in offload mode.

    `embed_kit`: a qlik-embed kit directory (`page/` is served at `/static/embed-kit/`; the
    simulator must serve its `runtime/`): the home page then shows a live `<qlik-embed>`.
    """
    sso = QlikSSO(
        QlikTarget(qlik_url, prefix=DEMO_PREFIX, auth=HeaderAuth(DEMO_HEADER)),
        resolver=demo_resolver,
        login_url="/login",
    )
    routes: list[BaseRoute] = [
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
    if embed_kit is not None:
        routes.append(Mount(EMBED_KIT_PATH, app=StaticFiles(directory=embed_kit / "page")))
    routes.append(Mount("/static", StaticFiles(directory=_STATIC), name="static"))
    app = Starlette(routes=routes)
    app.state.embed_kit = embed_kit is not None
    # Outermost first: the session cookie is decoded before the Qlik middleware's resolver runs.
    return SessionMiddleware(
        QlikSSOMiddleware(app, sso=sso, front_proxy=front_proxy),
        secret_key=secret_key or secrets.token_urlsafe(32),
        session_cookie="demo_session",
        same_site="lax",
    )
