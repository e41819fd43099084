"""Starlette app embedding Qlik Sense, with Starlette's own authentication.

    qlik-sso simulate --port 8080
    QLIK_URL=http://127.0.0.1:8080 python examples/starlette_app/app.py --port 8000
    # open http://127.0.0.1:8000 and log in as alice / demo

The user comes from `AuthenticationMiddleware` (`scope["user"]`) through `ScopeUserResolver`. The
middleware list runs outermost first: session → authentication → Qlik. With the Qlik middleware
outside `AuthenticationMiddleware`, `scope["user"]` would not be set yet and Qlik would answer 401.
"""

from __future__ import annotations

import argparse
import html
import os
import secrets
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from qlik_sso_middleware import HeaderAuth, QlikSSOMiddleware, QlikTarget, ScopeUserResolver
from qlik_sso_middleware.integrations.starlette import logout_current_user

QLIK_URL = os.environ.get("QLIK_URL", "")
PREFIX = os.environ.get("QLIK_PREFIX", "sso")
HEADER = os.environ.get("QLIK_HEADER", "hdr-usr")
APP_ID = os.environ.get("QLIK_APP_ID", "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
OBJECT_ID = os.environ.get("QLIK_OBJECT_ID", "sales-table")
USERS = {"alice": "demo", "bob": "demo"}  # a real app checks its user database
STATIC = os.path.join(os.path.dirname(__file__), "..", "static")


class SessionBackend(AuthenticationBackend):
    """The user the login form put in the signed session cookie."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        user = conn.session.get("user")
        return (AuthCredentials(["authenticated"]), SimpleUser(user)) if user else None


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}iframe{width:100%;height:420px;"
        "border:1px solid #ccc}td,th{padding:.2em .8em}</style>"
        f"<h1>{title}</h1>{body}"
    )


def nav(request: Request) -> str:
    return (
        f"<p id=user>Logged in as {html.escape(request.user.display_name)} · "
        "<a href=/embed>iframe</a> · <a href=/mashup>mashup</a> · "
        "<a href=/static/qlik-embed.html>qlik-embed</a></p>"
        "<form method=post action=/logout><button id=logout>Log out</button></form>"
    )


async def home(request: Request) -> Response:
    return RedirectResponse("/embed" if request.user.is_authenticated else "/login", 303)


async def login(request: Request) -> Response:
    if request.method == "GET":
        message = (
            "<p id=error>Wrong user name or password</p>" if "error" in request.query_params else ""
        )
        return page(
            "Log in",
            f"{message}<form method=post action=/login>"
            "<label>User <input name=username></label> "
            "<label>Password <input name=password type=password></label> "
            "<button>Log in</button></form><p>Users: alice / demo, bob / demo</p>",
        )
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    username = form.get("username", [""])[0]
    expected = USERS.get(username)
    if expected is None or not secrets.compare_digest(expected, form.get("password", [""])[0]):
        return RedirectResponse("/login?error=1", 303)
    request.session["user"] = username
    return RedirectResponse("/embed", 303)


async def embed(request: Request) -> Response:
    if not request.user.is_authenticated:
        return RedirectResponse("/login", 303)
    src = html.escape(f"/{PREFIX}/single/?appid={APP_ID}&obj={OBJECT_ID}&opt=ctxmenu", quote=True)
    return page("Qlik in an iframe", nav(request) + f"<iframe id=qlik-frame src='{src}'></iframe>")


async def mashup(request: Request) -> Response:
    if not request.user.is_authenticated:
        return RedirectResponse("/login", 303)
    return page(
        "Mashup on the engine WebSocket",
        nav(request) + f"<div id=mashup data-state=connecting data-prefix='{PREFIX}' "
        f"data-app-id='{html.escape(APP_ID, quote=True)}' "
        f"data-object-id='{html.escape(OBJECT_ID, quote=True)}'>"
        "<p id=mashup-user></p><table id=mashup-table></table><p id=mashup-error></p></div>"
        "<script src=/static/qlik-mashup.js></script>",
    )


async def logout(request: Request) -> Response:
    await logout_current_user(request)  # first: it reads the user from the session
    request.session.clear()
    return RedirectResponse("/login", 303)


def create_app() -> Starlette:
    if not QLIK_URL:
        raise SystemExit("set QLIK_URL to the Qlik proxy, e.g. QLIK_URL=http://127.0.0.1:8080")
    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/embed", embed),
            Route("/mashup", mashup),
            Route("/logout", logout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC)),
        ],
        middleware=[
            # same_site="lax": other sites cannot POST /logout with the user's cookie.
            Middleware(
                SessionMiddleware,
                secret_key=os.environ.get("APP_SECRET", secrets.token_hex(32)),
                same_site="lax",
            ),
            Middleware(AuthenticationMiddleware, backend=SessionBackend()),
            Middleware(
                QlikSSOMiddleware,
                target=QlikTarget(QLIK_URL, prefix=PREFIX, auth=HeaderAuth(HEADER)),
                resolver=ScopeUserResolver("ACME"),
                login_url="/login",
            ),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_max_size=256 * 1024 * 1024,  # Qlik layouts can be many MiB
    )


if __name__ == "__main__":
    main()
