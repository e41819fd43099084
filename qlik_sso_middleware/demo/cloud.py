"""The demo app in front of a (simulated) Qlik Cloud tenant: `qlik-sso demo --cloud`.

The same login form, users, session and logout as the Qlik Sense demo (`app.py`); the home page
shows both Cloud modes the middleware serves under `/qlik-cloud/`:

- **token broker**: `static/cloud.js` POSTs `/qlik-cloud/access-token` the way a page's
  `getAccessToken` does for `<qlik-embed data-auth-type="Oauth2">` or @qlik/api, and shows what
  came back (never the token itself);
- **cookie proxy**: the tenant's `single/` page in an iframe and the engine WebSocket (the mashup
  panel of `static/demo.js`), both on the app's own origin with the user's JWT-login session.
"""

from __future__ import annotations

import secrets
from html import escape
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from ..cloud import CloudTarget
from ..core import QlikSSO
from ..identity import QlikIdentity
from ..middleware import QlikSSOMiddleware
from .app import _STATIC, _csrf, login, login_form, logout
from .pages import _page, app_header
from .settings import DEMO_APP_ID, DEMO_DIRECTORY, DEMO_FRAME_OBJECT, DEMO_MASHUP_OBJECT

__all__ = ["DEMO_CLOUD_MOUNT", "build_cloud_demo_app", "cloud_demo_resolver", "cloud_home_page"]

DEMO_CLOUD_MOUNT = "/qlik-cloud/"
_NO_STORE = {"cache-control": "no-store"}


def cloud_demo_resolver(conn: HTTPConnection) -> QlikIdentity | None:
    """The logged-in demo user as `ACME\\<user>`, with the name and e-mail a JWT login needs."""
    user = conn.session.get("user")
    if not isinstance(user, str):
        return None
    return QlikIdentity(
        DEMO_DIRECTORY, user, {"name": user.title(), "email": f"{user}@acme.example"}
    )


def cloud_home_page(user: str, csrf: str) -> str:
    mount = DEMO_CLOUD_MOUNT
    frame = f"{mount}single/?appid={quote(DEMO_APP_ID)}&obj={quote(DEMO_FRAME_OBJECT)}"
    identity = f"{DEMO_DIRECTORY}\\{user}"
    snippet = (
        f'<qlik-embed ui="analytics/chart" app-id="{DEMO_APP_ID}" '
        f'object-id="{DEMO_MASHUP_OBJECT}"></qlik-embed>'
    )
    body = f"""
{app_header("Demo app (Qlik Cloud)", identity, csrf)}
<main class="grid">
  <section class="card" id="broker" data-state="asking" data-url="{escape(mount)}access-token">
    <h2>Token broker (qlik-embed, @qlik/api)</h2>
    <p>The page asks <code>POST {escape(mount)}access-token</code>; the middleware answers an
       OAuth impersonation token for {escape(identity)}, cached per user, the client secret
       never leaving the server.</p>
    <p id="broker-status">asking…</p>
    <p>What a page then needs (qlik-embed fetches the token with the function it names):</p>
    <pre>&lt;script src=".../@qlik/embed-web-components" data-host="&lt;tenant&gt;"
  data-client-id="&lt;client id&gt;" data-auth-type="Oauth2"
  data-get-access-token="getAccessToken"&gt;&lt;/script&gt;
{escape(snippet)}</pre>
  </section>
  <section class="card">
    <h2>Cookie proxy (iframe, the tenant's <code>single/</code>)</h2>
    <iframe id="qlik-frame" title="Qlik Cloud" src="{escape(frame)}"></iframe>
  </section>
  <section class="card" id="mashup" data-state="connecting" data-mount="{escape(mount)}"
           data-app-id="{escape(DEMO_APP_ID)}" data-object-id="{escape(DEMO_MASHUP_OBJECT)}">
    <h2>Cookie proxy (engine WebSocket)</h2>
    <p id="mashup-user"></p>
    <p id="mashup-status">connecting…</p>
    <h3 id="mashup-title"></h3>
    <table id="mashup-table"><thead></thead><tbody></tbody></table>
  </section>
</main>
<script src="/static/demo.js"></script>
<script src="/static/cloud.js"></script>"""
    return _page("qlik-sso demo (Qlik Cloud)", body, "home")


async def cloud_home(request: Request) -> Response:
    user = request.session.get("user")
    if not isinstance(user, str):
        return RedirectResponse("/login", 303)
    return HTMLResponse(cloud_home_page(user, _csrf(request)), headers=_NO_STORE)


def build_cloud_demo_app(target: CloudTarget, *, secret_key: str | None = None) -> ASGIApp:
    """The demo app in front of the tenant `target` (mounted at `/qlik-cloud/`)."""
    sso = QlikSSO(target, resolver=cloud_demo_resolver, login_url="/login")
    routes = [
        Route("/", cloud_home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]
    return SessionMiddleware(
        QlikSSOMiddleware(Starlette(routes=routes), sso=sso),
        secret_key=secret_key or secrets.token_urlsafe(32),
        session_cookie="demo_session",
        same_site="lax",
    )
