"""Custom resolver: the identity comes from a JWT the app issues, groups included.

    qlik-sso simulate --port 8080 --api-port 4243 --cert-dir /tmp/qlik-sim-certs \\
        --config examples/jwt_resolver/simulator.toml
    QLIK_URL=http://127.0.0.1:8080 QLIK_API_URL=https://127.0.0.1:4243 \\
        QLIK_CERT_DIR=/tmp/qlik-sim-certs python examples/jwt_resolver/app.py --port 8000
    # open http://127.0.0.1:8000 and log in as alice / demo (groups Sales, EMEA)

At login the app signs a short-lived JWT (HS256, PyJWT) with the user's name and groups and keeps it
in an HttpOnly, SameSite=Lax cookie. `JWTResolver` verifies signature, algorithm, issuer, audience
and expiry, and turns the claims into `QlikIdentity("ACME", sub, {"Group": groups})`: groups become
Qlik attributes, usable in section access and security rules.

Attributes cannot travel in a header (`HeaderAuth` refuses identities that carry them), so this
example uses `SessionApiAuth`: one call to the QPS session API with the client certificate
(`root.pem`, `client.pem`, `client_key.pem` from `QLIK_CERT_DIR`) creates the session with its
attributes; the browser never sees a ticket or a certificate.
"""

from __future__ import annotations

import argparse
import html
import os
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from qlik_sso_middleware import (
    QlikIdentity,
    QlikSSOMiddleware,
    QlikTarget,
    QPSSettings,
    SessionApiAuth,
)
from qlik_sso_middleware.integrations.starlette import logout_current_user

QLIK_URL = os.environ.get("QLIK_URL", "")
QLIK_API_URL = os.environ.get("QLIK_API_URL", "")
QLIK_CERT_DIR = os.environ.get("QLIK_CERT_DIR", "")
PREFIX = os.environ.get("QLIK_PREFIX", "jwt")
APP_ID = os.environ.get("QLIK_APP_ID", "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
OBJECT_ID = os.environ.get("QLIK_OBJECT_ID", "sales-table")
STATIC = os.path.join(os.path.dirname(__file__), "..", "static")
SECRET = os.environ.get("APP_SECRET", secrets.token_hex(32))
COOKIE = "app_token"
ISSUER = AUDIENCE = "jwt-example"
LIFETIME = 30 * 60
# A real app reads these from its user database / identity provider.
USERS = {"alice": ("demo", ["Sales", "EMEA"]), "bob": ("demo", ["Operations"])}


class JWTResolver:
    """`Resolver` protocol: the identity in the request's JWT cookie, or `None`.

    Any defect (bad signature, `alg` other than HS256 incl. `none`, wrong issuer or audience,
    expired, missing claims) is "nobody" (401); a `sub` that cannot be a Qlik user name raises
    `InvalidIdentity` in `QlikIdentity` (403).
    """

    def __init__(self, secret: str, *, user_directory: str = "ACME") -> None:
        self._secret = secret
        self._directory = user_directory

    async def resolve(self, conn: HTTPConnection) -> QlikIdentity | None:
        token = conn.cookies.get(COOKIE)
        if not token:
            return None
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                audience=AUDIENCE,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.InvalidTokenError:
            return None
        groups = claims.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            return None
        return QlikIdentity(self._directory, str(claims["sub"]), {"Group": groups})


def issue_token(user: str, groups: list[str]) -> str:
    now = int(time.time())
    claims = {
        "sub": user,
        "groups": groups,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + LIFETIME,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}iframe{width:100%;height:420px;"
        "border:1px solid #ccc}td,th{padding:.2em .8em}</style>"
        f"<h1>{title}</h1>{body}"
    )


async def signed_in(request: Request) -> QlikIdentity | None:
    return await JWTResolver(SECRET).resolve(request)


def nav(identity: QlikIdentity) -> str:
    groups = ", ".join(v for _, v in identity.attributes)
    return (
        f"<p id=user>Logged in as {html.escape(identity.user_id)} (groups: "
        f"{html.escape(groups)}) · <a href=/embed>iframe</a> · <a href=/mashup>mashup</a></p>"
        "<form method=post action=/logout><button id=logout>Log out</button></form>"
    )


async def login(request: Request) -> Response:
    if request.method == "GET":
        return page(
            "Log in",
            "<form method=post action=/login><label>User <input name=username></label> "
            "<label>Password <input name=password type=password></label> <button>Log in</button>"
            "</form><p>Users: alice / demo, bob / demo</p>",
        )
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    entry = USERS.get(form.get("username", [""])[0])
    if entry is None or not secrets.compare_digest(entry[0], form.get("password", [""])[0]):
        return RedirectResponse("/login", 303)
    response = RedirectResponse("/embed", 303)
    token = issue_token(form["username"][0], entry[1])
    response.set_cookie(COOKIE, token, max_age=LIFETIME, httponly=True, samesite="lax")
    return response


async def embed(request: Request) -> Response:
    identity = await signed_in(request)
    if identity is None:
        return RedirectResponse("/login", 303)
    src = html.escape(f"/{PREFIX}/single/?appid={APP_ID}&obj={OBJECT_ID}", quote=True)
    return page("Qlik in an iframe", nav(identity) + f"<iframe id=qlik-frame src='{src}'></iframe>")


async def mashup(request: Request) -> Response:
    identity = await signed_in(request)
    if identity is None:
        return RedirectResponse("/login", 303)
    return page(
        "Mashup on the engine WebSocket",
        nav(identity) + f"<div id=mashup data-state=connecting data-prefix='{PREFIX}' "
        f"data-app-id='{html.escape(APP_ID, quote=True)}' "
        f"data-object-id='{html.escape(OBJECT_ID, quote=True)}'>"
        "<p id=mashup-user></p><table id=mashup-table></table><p id=mashup-error></p></div>"
        "<script src=/static/qlik-mashup.js></script>",
    )


async def logout(request: Request) -> Response:
    await logout_current_user(request)  # SessionApiAuth ends every Qlik session of the user
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE)
    return response


def create_app() -> Starlette:
    if not (QLIK_URL and QLIK_API_URL and QLIK_CERT_DIR):
        raise SystemExit("set QLIK_URL, QLIK_API_URL and QLIK_CERT_DIR (see the docstring)")
    certs = Path(QLIK_CERT_DIR)
    auth = SessionApiAuth(
        QPSSettings(
            api_url=QLIK_API_URL,
            prefix=PREFIX,
            root=certs / "root.pem",
            client_cert=certs / "client.pem",
            client_key=certs / "client_key.pem",
        )
    )
    return Starlette(
        routes=[
            Route("/", lambda request: RedirectResponse("/embed", 303)),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/embed", embed),
            Route("/mashup", mashup),
            Route("/logout", logout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC)),
        ],
        middleware=[
            Middleware(
                QlikSSOMiddleware,
                target=QlikTarget(QLIK_URL, prefix=PREFIX, auth=auth),
                resolver=JWTResolver(SECRET),
                login_url="/login",
            )
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
