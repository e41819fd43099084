"""What a logged-in client can fetch under a virtual proxy: pages, static files, QRS and QMC.

QRS (`qrs/...`) needs the xrfkey pair like the QPS API; `qmc/` is an HTML page. Both exist so that
tests can prove a proxy in front of the simulator keeps them unreachable for embedded users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ._asgi import Send, html_page, query_get, send_body, send_json
from .demo_apps import DemoApp
from .pages import client_page, qmc_page
from .xrfkey import XRF_FAILED, xrfkey_pair_refused

__all__ = ["XRF_FAILED", "serve_content"]


async def serve_content(
    apps: Mapping[str, DemoApp],
    rest: str,
    query: str,
    header_values: Callable[[str], list[str]],
    send: Send,
) -> None:
    """Answer `rest` (the path after the VP prefix) for a request that already has a session."""
    segments = rest.split("/")
    if rest in ("", "hub", "hub/") or segments[0] == "hub":
        await send_body(send, 200, client_page("hub", apps, None, None))
    elif segments[0] == "single":
        app_id = query_get(query, "appid") or ""
        obj = query_get(query, "obj") or query_get(query, "sheet")
        page = client_page("single", apps, app_id, _object_or_none(apps, app_id, obj))
        await _page_or_404(send, page)
    elif segments[:2] == ["sense", "app"] and len(segments) >= 3:
        app_id = segments[2]
        # Any later segment naming one of the app's objects selects it (else the first).
        app = apps.get(app_id)
        obj = next((seg for seg in segments[3:] if app and app.object(seg)), None)
        page = client_page("sense", apps, app_id, _object_or_none(apps, app_id, obj))
        await _page_or_404(send, page)
    elif segments[0] == "qmc":
        await send_body(send, 200, qmc_page())
    elif segments[0] == "qrs":
        await _qrs(rest, query, header_values, segments[1:], send)
    elif segments[0] in ("resources", "extensions"):
        await _resource(rest, send)
    elif segments[0] == "api" and rest.startswith("api/about/v1/"):
        await send_json(send, 200, {"name": "Qlik Sense (simulated)"})
    elif segments[0] == "app":
        await send_body(send, 400, "WebSocket upgrade required", "text/plain")
    else:
        await send_body(send, 404, html_page("Not found", "Not found"))


async def _qrs(
    rest: str,
    query: str,
    header_values: Callable[[str], list[str]],
    segments: list[str],
    send: Send,
) -> None:
    if xrfkey_pair_refused(rest, query, header_values, required=True):
        await send_body(send, 403, XRF_FAILED, "text/plain; charset=utf-8")
        return
    if segments[:1] == ["about"]:
        await send_json(send, 200, {"buildVersion": "24.2.6.0", "databaseProvider": "sim"})
    else:
        await send_json(send, 200, [])


def _object_or_none(apps: Mapping[str, DemoApp], app_id: str, obj: str | None) -> str | None:
    app = apps.get(app_id)
    if app is None or obj is None:
        return None
    return obj if app.object(obj) is not None else None


async def _page_or_404(send: Send, page: str) -> None:
    if page:
        await send_body(send, 200, page)
    else:
        await send_body(send, 404, html_page("Not found", "The app does not exist"))


_RESOURCES = {
    "js": ("application/javascript", "/* simulated Qlik resource */\n"),
    "css": ("text/css", "/* simulated Qlik resource */\n"),
}


async def _resource(rest: str, send: Send) -> None:
    extension = rest.rpartition(".")[2] if "." in rest.rpartition("/")[2] else "js"
    if rest.rstrip("/").endswith("js/qlik"):
        extension = "js"
    found = _RESOURCES.get(extension)
    if found is None:
        await send_body(send, 404, "Not found", "text/plain")
    else:
        await send_body(send, 200, found[1], found[0])
