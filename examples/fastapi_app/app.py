"""FastAPI app embedding Qlik Sense for its own logged-in users.

    qlik-sso simulate --port 8080                          # a Qlik Sense simulator (or your Qlik)
    QLIK_URL=http://127.0.0.1:8080 python examples/fastapi_app/app.py --port 8000
    # open http://127.0.0.1:8000 and log in as alice / demo

The app's session is Starlette's signed-cookie `SessionMiddleware`; the resolver is a plain function
reading `request.session`, so the session middleware must be OUTSIDE `QlikSSOMiddleware` (added
after it: `add_middleware` puts the last one outermost). Logout uses the `qlik_logout` dependency.
"""

from __future__ import annotations

import argparse
import html
import os
import secrets
from urllib.parse import parse_qs

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection

from qlik_sso_middleware import HeaderAuth, QlikIdentity, QlikSSOMiddleware, QlikTarget
from qlik_sso_middleware.integrations.starlette import QlikLogout, qlik_logout

QLIK_URL = os.environ.get("QLIK_URL", "")
PREFIX = os.environ.get("QLIK_PREFIX", "sso")
HEADER = os.environ.get("QLIK_HEADER", "hdr-usr")
APP_ID = os.environ.get("QLIK_APP_ID", "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
OBJECT_ID = os.environ.get("QLIK_OBJECT_ID", "sales-table")
USERS = {"alice": "demo", "bob": "demo"}  # a real app checks its user database
STATIC = os.path.join(os.path.dirname(__file__), "..", "static")


def session_user(conn: HTTPConnection) -> QlikIdentity | None:
    """Who is logged in, for the Qlik middleware (`None`: nobody → 401 / redirect to login)."""
    user = conn.session.get("user")
    return QlikIdentity("ACME", user) if user else None


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}iframe{width:100%;height:420px;"
        "border:1px solid #ccc}td,th{padding:.2em .8em}</style>"
        f"<h1>{title}</h1>{body}"
    )


def nav(user: str) -> str:
    return (
        f"<p id=user>Logged in as {html.escape(user)} · <a href=/embed>iframe</a> · "
        "<a href=/mashup>mashup</a> · <a href=/static/qlik-embed.html>qlik-embed</a></p>"
        "<form method=post action=/logout>"
        "<button id=logout>Log out</button></form>"
    )


def create_app() -> FastAPI:
    if not QLIK_URL:
        raise SystemExit("set QLIK_URL to the Qlik proxy, e.g. QLIK_URL=http://127.0.0.1:8080")
    app = FastAPI()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse("/embed" if request.session.get("user") else "/login", 303)

    @app.get("/login")
    async def login_form(next: str = "/embed", error: str = "") -> HTMLResponse:
        message = "<p id=error>Wrong user name or password</p>" if error else ""
        return page(
            "Log in",
            f"{message}<form method=post action=/login>"
            f"<input type=hidden name=next value='{html.escape(next, quote=True)}'>"
            "<label>User <input name=username></label> "
            "<label>Password <input name=password type=password></label> "
            "<button>Log in</button></form><p>Users: alice / demo, bob / demo</p>",
        )

    @app.post("/login")
    async def login(request: Request) -> Response:
        # A urlencoded form, parsed by hand so the example needs no python-multipart.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        username = form.get("username", [""])[0]
        password = form.get("password", [""])[0]
        next = form.get("next", ["/embed"])[0]
        expected = USERS.get(username)
        if expected is None or not secrets.compare_digest(expected, password):
            return RedirectResponse("/login?error=1", 303)
        request.session["user"] = username
        # Only local paths: an open redirect would let anyone bounce users elsewhere.
        target = next if next.startswith("/") and not next.startswith("//") else "/embed"
        return RedirectResponse(target, 303)

    @app.get("/embed")
    async def embed(request: Request) -> Response:
        user = request.session.get("user")
        if not user:
            return RedirectResponse("/login", 303)
        src = f"/{PREFIX}/single/?appid={APP_ID}&obj={OBJECT_ID}&opt=ctxmenu"
        return page(
            "Qlik in an iframe",
            nav(user) + f"<iframe id=qlik-frame src='{html.escape(src, quote=True)}'></iframe>",
        )

    @app.get("/mashup")
    async def mashup(request: Request) -> Response:
        user = request.session.get("user")
        if not user:
            return RedirectResponse("/login", 303)
        return page(
            "Mashup on the engine WebSocket",
            nav(user) + f"<div id=mashup data-state=connecting data-prefix='{PREFIX}' "
            f"data-app-id='{html.escape(APP_ID, quote=True)}' "
            f"data-object-id='{html.escape(OBJECT_ID, quote=True)}'>"
            "<p id=mashup-user></p><table id=mashup-table></table><p id=mashup-error></p></div>"
            "<script src=/static/qlik-mashup.js></script>",
        )

    @app.post("/logout")
    async def logout(
        request: Request,
        qlik: QlikLogout = Depends(qlik_logout),  # noqa: B008 - resolved before the session clears
    ) -> Response:
        await qlik()
        request.session.clear()
        return RedirectResponse("/login", 303)

    app.add_middleware(
        QlikSSOMiddleware,
        target=QlikTarget(QLIK_URL, prefix=PREFIX, auth=HeaderAuth(HEADER)),
        resolver=session_user,
        login_url="/login",
    )
    # Added last = outermost: the session is decoded before the Qlik middleware reads it.
    # same_site="lax" keeps other sites from POSTing to /logout with the user's cookie.
    app.add_middleware(
        SessionMiddleware,
        secret_key=os.environ.get("APP_SECRET", secrets.token_hex(32)),
        same_site="lax",
    )
    return app


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
        log_level="info",
    )


if __name__ == "__main__":
    main()
