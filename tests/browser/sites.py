"""Tiny servers on other origins, for the cross-site checks: an embedder page, a third-party
cookie control, and a foreign page that tries to open our WebSocket.

Site vs origin: `127.0.0.1:<other port>` is another *origin* but the same *site* as the demo
(cookies ignore ports, so the demo's `SameSite=Lax` cookie is sent along); `localhost:<port>` is
another *site*, so its cookies in a frame on a 127.0.0.1 page are third-party cookies.
"""

from __future__ import annotations

import json
from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = ["CONTROL_COOKIE", "control_site", "embedder_site", "on_localhost", "socket_probe_site"]

#: The control cookie: `SameSite=None; Secure`, i.e. everything a third-party cookie needs.
CONTROL_COOKIE = "control_3p"


def on_localhost(url: str) -> str:
    """The same server reached as `localhost` (a different site from 127.0.0.1)."""
    return url.replace("://127.0.0.1:", "://localhost:", 1)


def embedder_site() -> Starlette:
    """`/?src=<url>`: a page that embeds `<url>` in `iframe#embedded`."""

    async def page(request: Request) -> HTMLResponse:
        src = request.query_params.get("src", "about:blank")
        return HTMLResponse(
            "<!doctype html><title>embedder</title>"
            f"<iframe id='embedded' src='{escape(src)}' width='640' height='420'></iframe>"
        )

    return Starlette(routes=[Route("/", page)])


def control_site() -> Starlette:
    """`/set` sets the control cookie and redirects to `/check`, which shows what came back."""

    async def set_cookie(request: Request) -> Response:
        response = RedirectResponse("/check", 303)
        response.set_cookie(CONTROL_COOKIE, "1", samesite="none", secure=True)
        return response

    async def check(request: Request) -> HTMLResponse:
        seen = request.cookies.get(CONTROL_COOKIE, "none")
        return HTMLResponse(f"<!doctype html><body data-cookie='{escape(seen)}'>{escape(seen)}")

    return Starlette(routes=[Route("/set", set_cookie), Route("/check", check)])


#: Opens `target` as a WebSocket and reports in `body[data-outcome]`: "open" (with the first
#: message in `data-first`) or "refused" (closed before opening, with the close code).
PROBE_SCRIPT = """
(target) => new Promise((resolve) => {
  const ws = new WebSocket(target);
  let opened = false;
  ws.onopen = () => { opened = true; };
  ws.onmessage = (event) => { ws.close(); resolve({outcome: "open", first: event.data}); };
  ws.onclose = (event) => {
    if (!opened) { resolve({outcome: "refused", code: event.code}); }
  };
})
"""


def socket_probe_site(target: str) -> Starlette:
    """`/`: a foreign page whose script opens `target` (our engine WebSocket) and reports."""

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><title>foreign</title><body data-outcome='pending'><script>"
            f"({PROBE_SCRIPT})({json.dumps(target)}).then((r) => {{"
            "document.body.dataset.detail = JSON.stringify(r);"
            "document.body.dataset.outcome = r.outcome; });"
            "</script></body>"
        )

    return Starlette(routes=[Route("/", page)])
