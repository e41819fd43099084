"""Small raw-ASGI helpers shared by the simulator's two ports (parsing and answering)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "Message",
    "Receive",
    "Scope",
    "Send",
    "header_pairs",
    "hostname_of",
    "html_page",
    "parse_cookies",
    "query_get",
    "send_body",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def header_pairs(scope: Scope) -> list[tuple[str, str]]:
    """Request headers in received order, decoded as latin-1 (no value can fail to decode)."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]


def parse_cookies(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every `name=value` pair of every Cookie header, in order (duplicates kept)."""
    pairs: list[tuple[str, str]] = []
    for key, value in headers:
        if key.lower() != "cookie":
            continue
        for part in value.split(";"):
            name, sep, val = part.strip().partition("=")
            if sep and name:
                pairs.append((name, val.strip().strip('"')))
    return pairs


def query_pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def query_get(query: str, name: str) -> str | None:
    """First value of query parameter `name`, matched case-insensitively (as QPS does)."""
    lowered = name.lower()
    for key, value in query_pairs(query):
        if key.lower() == lowered:
            return value
    return None


async def send_body(
    send: Send,
    status: int,
    body: bytes | str,
    content_type: str = "text/html; charset=utf-8",
    headers: list[tuple[str, str]] | None = None,
) -> None:
    """Answer a complete response."""
    data = body.encode() if isinstance(body, str) else body
    raw = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(data)).encode()),
    ]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers or []]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def send_json(
    send: Send, status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> None:
    await send_body(send, status, json.dumps(payload), "application/json; charset=utf-8", headers)


def html_page(title: str, message: str) -> str:
    """A plain error/information page like the ones QPS serves."""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><h1>{title}</h1><p>{message}</p></body></html>"
    )


async def drain(receive: Receive) -> int:
    """Read and discard the request body; returns its size."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return size
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return size


def hostname_of(host: str) -> str:
    """Host (or Origin authority) without the port, lower-cased: `[::1]:80` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


async def http_only(scope: Scope, receive: Receive, send: Send) -> bool:
    """True for an HTTP request; a WebSocket is refused (1008), lifespan ignored. For the API
    ports, which serve no WebSocket."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1008})
    return bool(scope["type"] == "http")
