"""One app, two tenants: each host name has its own users, user directory and Qlik virtual proxy.

    qlik-sso simulate --port 8080 --config examples/tenants/simulator.toml
    QLIK_URL=http://127.0.0.1:8080 python examples/tenants/app.py --port 8000
    # open http://a.localhost:8000 (alice / demo) and http://b.localhost:8000 (bob / demo)

| host        | users | Qlik user directory | virtual proxy (mount) | identity header |
|-------------|-------|---------------------|-----------------------|-----------------|
| a.localhost | alice | TENANT_A            | ta (/ta/)             | hdr-a           |
| b.localhost | bob   | TENANT_B            | tb (/tb/)             | hdr-b           |

`TenantResolver` picks the tenant from the host and binds the identity to that tenant's target, so
the middleware refuses a tenant-A user on `/tb/` (403). Hazard this example also closes: the app's
session cookie is signed with one key for both hosts, so a cookie replayed against the other host
would otherwise name a same-named user of the *other* tenant. The session records its tenant at
login, and the user resolver refuses a session whose tenant is not the request's.
"""

from __future__ import annotations

import argparse
import html
import os
import secrets
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from qlik_sso_middleware import (
    HeaderAuth,
    QlikIdentity,
    QlikSSOMiddleware,
    QlikTarget,
    Tenant,
    TenantResolver,
)
from qlik_sso_middleware.integrations.starlette import logout_current_user
from qlik_sso_middleware.resolvers.tenants import tenant_from_host

QLIK_URL = os.environ.get("QLIK_URL", "")
APP_ID = os.environ.get("QLIK_APP_ID", "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
OBJECT_ID = os.environ.get("QLIK_OBJECT_ID", "sales-table")
STATIC = os.path.join(os.path.dirname(__file__), "..", "static")

TENANTS = {
    "a.localhost": Tenant("TENANT_A", target="ta"),
    "b.localhost": Tenant("TENANT_B", target="tb"),
}
HEADERS = {"ta": "hdr-a", "tb": "hdr-b"}
USERS = {"a.localhost": {"alice": "demo"}, "b.localhost": {"bob": "demo"}}


def tenant_host(conn: HTTPConnection) -> str:
    return tenant_from_host(conn) or ""


def session_user(conn: HTTPConnection) -> QlikIdentity | None:
    """The logged-in user, only if their session was opened on this very tenant."""
    user, tenant = conn.session.get("user"), conn.session.get("tenant")
    if not user or tenant != tenant_host(conn):
        return None
    # The directory here is a placeholder: TenantResolver replaces it with the tenant's.
    return QlikIdentity("APP", user)


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}iframe{width:100%;height:420px;"
        "border:1px solid #ccc}td,th{padding:.2em .8em}</style>"
        f"<h1>{title}</h1>{body}"
    )


def current(request: Request) -> tuple[str, str] | None:
    """(user, Qlik prefix) of a request whose session belongs to its tenant."""
    identity = session_user(request)
    tenant = TENANTS.get(tenant_host(request))
    if identity is None or tenant is None or tenant.target is None:
        return None
    return identity.user_id, tenant.target


def nav(user: str, tenant: str) -> str:
    return (
        f"<p id=user>Logged in as {html.escape(user)} on {html.escape(tenant)} · "
        "<a href=/embed>iframe</a> · <a href=/mashup>mashup</a></p>"
        "<form method=post action=/logout><button id=logout>Log out</button></form>"
    )


async def login(request: Request) -> Response:
    host = tenant_host(request)
    if host not in TENANTS:
        return page("Unknown tenant", "<p>Use a.localhost or b.localhost.</p>")
    if request.method == "GET":
        return page(
            f"Log in to {html.escape(host)}",
            "<form method=post action=/login><label>User <input name=username></label> "
            "<label>Password <input name=password type=password></label> <button>Log in</button>"
            "</form><p>a.localhost: alice / demo · b.localhost: bob / demo</p>",
        )
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    username = form.get("username", [""])[0]
    expected = USERS[host].get(username)
    if expected is None or not secrets.compare_digest(expected, form.get("password", [""])[0]):
        return RedirectResponse("/login", 303)
    request.session.update({"user": username, "tenant": host})
    return RedirectResponse("/embed", 303)


async def embed(request: Request) -> Response:
    who = current(request)
    if who is None:
        return RedirectResponse("/login", 303)
    user, prefix = who
    src = html.escape(f"/{prefix}/single/?appid={APP_ID}&obj={OBJECT_ID}", quote=True)
    return page(
        "Qlik in an iframe",
        nav(user, tenant_host(request)) + f"<iframe id=qlik-frame src='{src}'></iframe>",
    )


async def mashup(request: Request) -> Response:
    who = current(request)
    if who is None:
        return RedirectResponse("/login", 303)
    user, prefix = who
    return page(
        "Mashup on the engine WebSocket",
        nav(user, tenant_host(request))
        + f"<div id=mashup data-state=connecting data-prefix='{prefix}' "
        f"data-app-id='{html.escape(APP_ID, quote=True)}' "
        f"data-object-id='{html.escape(OBJECT_ID, quote=True)}'>"
        "<p id=mashup-user></p><table id=mashup-table></table><p id=mashup-error></p></div>"
        "<script src=/static/qlik-mashup.js></script>",
    )


async def logout(request: Request) -> Response:
    await logout_current_user(request)  # the tenant's target only
    request.session.clear()
    return RedirectResponse("/login", 303)


def create_app() -> Starlette:
    if not QLIK_URL:
        raise SystemExit("set QLIK_URL to the Qlik proxy, e.g. QLIK_URL=http://127.0.0.1:8080")
    targets = [
        QlikTarget(QLIK_URL, prefix=prefix, name=prefix, auth=HeaderAuth(header))
        for prefix, header in HEADERS.items()
    ]
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
                SessionMiddleware,
                secret_key=os.environ.get("APP_SECRET", secrets.token_hex(32)),
                same_site="lax",
            ),
            Middleware(
                QlikSSOMiddleware,
                targets=targets,
                resolver=TenantResolver(TENANTS, session_user, tenant_of=tenant_host),
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
