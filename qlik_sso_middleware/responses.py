"""Every early answer the library gives itself: errors, redirects, health, WebSocket refusals.

One place, so that each answer carries the same safe headers (`no-store`, `nosniff`), an error's
body never says more than its `public_message`, and HTTP and WebSocket refusals cannot drift apart.
"""

from __future__ import annotations

import json
import math
from html import escape

from starlette.types import Scope, Send

from .errors import QlikSSOError, RequestRefused, private_close_code

__all__ = [
    "close_websocket",
    "deny_handshake",
    "error_body",
    "refuse_websocket",
    "respond",
    "respond_error",
    "wants_html",
]


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A complete HTTP answer in one piece."""
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def wants_html(accept: bytes, requested_with: bytes | None) -> bool:
    """A browser page load (HTML accepted, not an XHR) rather than a script or an API client."""
    return b"text/html" in accept and not requested_with


def error_body(
    status: int, message: str, *, html: bool, title: str | None = None
) -> tuple[bytes, str]:
    """The body and content type of an error answer: a small HTML page (headed `title` when
    given) or JSON `{"error": message, "status": status}`."""
    if html:
        text = escape(message)
        head = f"{status} {escape(title)}" if title else str(status)
        page = f"<!doctype html><title>{head if title else f'{status} {text}'}</title>"
        page += f"<h1>{head}</h1><p>{text}</p>"
        return page.encode(), "text/html; charset=utf-8"
    return json.dumps({"error": message, "status": status}).encode(), "application/json"


async def close_websocket(send: Send, code: int, reason: str = "") -> None:
    """Close with `code`, or its application-range twin where the server refuses the protocol's
    own codes (daphne: `errors.private_close_code`)."""
    try:
        await send({"type": "websocket.close", "code": code, "reason": reason})
    except Exception:
        if private_close_code(code) == code:
            raise
        await send({"type": "websocket.close", "code": private_close_code(code), "reason": reason})


async def respond_error(scope: Scope, send: Send, exc: QlikSSOError) -> None:
    """`exc` as an HTTP answer: its status and public message, HTML for page loads, else JSON."""
    headers: dict[bytes, bytes] = dict(scope["headers"])
    html = wants_html(headers.get(b"accept", b""), headers.get(b"x-requested-with"))
    body, content_type = error_body(exc.status_code, exc.public_message, html=html)
    extra = []
    if exc.status_code == 503:
        # A Qlik Cloud 429 says how long to wait; other 503s are worth a retry at once.
        wait = getattr(exc, "retry_after", None)
        seconds = max(1, math.ceil(wait)) if isinstance(wait, int | float) else 1
        extra.append((b"retry-after", str(seconds).encode("ascii")))
    await respond(send, exc.status_code, body, content_type, extra)


async def deny_handshake(
    scope: Scope, send: Send, status: int, body: bytes, content_type: str, close_code: int
) -> None:
    """Refuse a WebSocket handshake before accepting it: with an HTTP answer where the server
    supports the denial extension, else by closing (the server then answers 403 itself)."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await close_websocket(send, close_code)
        return
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def refuse_websocket(scope: Scope, send: Send, exc: QlikSSOError) -> None:
    """Refuse a handshake for `exc`.

    Hostile requests (foreign Origin, path tricks) are refused at the HTTP level, never accepted.
    Otherwise (no user, Qlik trouble) the socket is accepted and closed at once with the error's
    close code and a short reason, because browser scripts can read those and not an HTTP status.
    """
    if isinstance(exc, RequestRefused):
        body, content_type = error_body(exc.status_code, exc.public_message, html=False)
        status = exc.status_code if exc.status_code >= 400 else 403
        await deny_handshake(scope, send, status, body, content_type, exc.ws_close_code)
        return
    await send({"type": "websocket.accept"})
    reason = exc.public_message.encode("utf-8")[:120].decode("utf-8", "ignore")
    await close_websocket(send, exc.ws_close_code, reason)
