"""The tenant's pages a legacy iframe embeds: `/single/?appid=…&obj=…` and the sign-in page.

Qlik Cloud still serves the single-integration page (`/single/`, qlik.dev "Embed content with
the single integration API"). What the simulator answers [inferred where marked]:

- a caller with a cookie session or bearer token gets the simulated client (the Qlik Sense
  simulator's page in its Cloud flavour: `api/v1/csrf-token`, then the engine WebSocket under the
  same prefix), so a browser test sees the object render through a proxy;
- anyone else is redirected to `/login?returnto=<the page>` [inferred: the tenant sends an
  unauthenticated page load to its sign-in, which then goes to the IdP];
- pages carry `Content-Security-Policy: frame-ancestors 'self'` [inferred: Qlik Cloud refuses
  framing by origins not listed in its content-security-policy settings], so a page of another
  origin cannot frame the tenant directly, while the same page relayed on the app's own origin can.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from .._asgi import Send, html_page, query_get, send_body
from ..demo_apps import DemoApp
from ..pages import client_page

__all__ = ["FRAME_POLICY", "is_page", "serve_page"]

FRAME_POLICY = ("content-security-policy", "frame-ancestors 'self'")


def is_page(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and (
        path in ("/single", "/login") or path.startswith(("/single/", "/login/"))
    )


async def serve_page(
    path: str,
    query: str,
    signed_in: bool,
    apps: Mapping[str, DemoApp],
    base_url: str,
    send: Send,
) -> None:
    """Answer a page load; `signed_in`: the request carried a live session or token."""
    if path == "/login" or path.startswith("/login/"):
        page = html_page("Sign in", "Sign in with your identity provider (simulated).")
        await send_body(send, 200, page, headers=[FRAME_POLICY])
        return
    if not signed_in:
        target = f"{base_url}{path}" + (f"?{query}" if query else "")
        location = f"{base_url}/login?returnto={quote(target, safe='')}"
        await send_body(send, 302, b"", "text/plain", [("location", location)])
        return
    app_id = query_get(query, "appid") or ""
    app = apps.get(app_id)
    obj = query_get(query, "obj")
    if app is None or (obj is not None and app.object(obj) is None):
        await send_body(send, 404, html_page("Not found", "No such app or object."))
        return
    page = client_page("single", apps, app_id, obj, cloud=True)
    await send_body(send, 200, page, headers=[FRAME_POLICY])
