"""Test-only endpoints under `/<prefix>/content/_sim/...`: big, slow, streamed and echoed bodies.

They sit behind the same authentication as every other path, so a test can prove that a proxy in
front of the simulator streams bodies (constant memory, chunk by chunk) and forwards what it should.
Bodies are never kept: only their size and digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import zlib
from typing import Any

from ._asgi import Receive, Send, drain, query_get, send_body, send_json

__all__ = ["handle_sim_endpoint"]

_PATTERN = bytes(range(256))
_DEFAULT_CHUNK = 64 * 1024
_MAX_CHUNK = 16 * 1024 * 1024  # memory stays bounded whatever the query asks


def _number(query: str, name: str, default: float) -> float:
    raw = query_get(query, name)
    try:
        value = float(raw) if raw is not None else default
    except ValueError:
        return default
    return value if math.isfinite(value) else default


async def _pause(receive: Receive, delay: float) -> bool:
    """Wait `delay` seconds; True when the client went away meanwhile (stop streaming then)."""
    try:
        message = await asyncio.wait_for(receive(), delay)
    except TimeoutError:
        return False
    return bool(message["type"] == "http.disconnect")


def _pattern_chunk(offset: int, length: int) -> bytes:
    """`length` bytes of the repeating bytes(range(256)) pattern starting at stream `offset`."""
    start = offset % 256
    reps = (start + length) // 256 + 1
    return (_PATTERN * reps)[start : start + length]


async def handle_sim_endpoint(
    name: str,
    method: str,
    scope: dict[str, Any],
    receive: Receive,
    send: Send,
    user: str | None,
    headers: list[tuple[str, str]],
    cookies: dict[str, str],
) -> bool:
    """Serve `content/_sim/<name>`; unknown names get 404. True when the client went away before
    a streamed answer ended."""
    query = scope.get("query_string", b"").decode("latin-1")
    if name == "bytes" and method in ("GET", "HEAD"):
        await drain(receive)
        return await _bytes(query, receive, send, head=method == "HEAD")
    elif name == "upload" and method in ("POST", "PUT"):
        size, digest = 0, hashlib.sha256()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return True
            chunk = message.get("body", b"")
            size += len(chunk)
            digest.update(chunk)
            if not message.get("more_body", False):
                break
        await send_json(send, 200, {"size": size, "sha256": digest.hexdigest()})
    elif name == "echo":
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return True
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send_json(
            send,
            200,
            {
                "method": method,
                "path": scope.get("raw_path", b"").decode("latin-1") or scope["path"],
                "query": query,
                "headers": [list(pair) for pair in headers],
                "cookies": cookies,
                "body_size": size,
                "user": user,
            },
        )
    elif name == "sse" and method == "GET":
        await drain(receive)
        count = int(_number(query, "count", 3))
        interval = _number(query, "interval", 0.0)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        for index in range(count):
            if index and interval > 0 and await _pause(receive, interval):
                return True
            event = f"id: {index}\nevent: tick\ndata: {json.dumps({'n': index})}\n\n"
            await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif name == "redirect" and method == "GET":
        target = query_get(query, "to") or "/"
        if not target.startswith("/"):
            target = "/" + target
        host = next((v for k, v in headers if k.lower() == "host"), "localhost")
        scheme = scope.get("scheme", "http")
        location = f"{scheme}://{host}{target}"
        await send_body(send, 302, "", headers=[("location", location)])
    else:
        await send_body(send, 404, "Not found", "text/plain; charset=utf-8")
    return False


async def _bytes(query: str, receive: Receive, send: Send, *, head: bool) -> bool:
    size = max(0, int(_number(query, "size", 0)))
    chunk = min(_MAX_CHUNK, max(1, int(_number(query, "chunk", _DEFAULT_CHUNK))))
    delay = _number(query, "delay", 0.0)
    gzip_on = query_get(query, "gzip") in ("1", "true")
    headers = [(b"content-type", b"application/octet-stream")]
    if gzip_on:
        headers.append((b"content-encoding", b"gzip"))
    else:
        headers.append((b"content-length", str(size).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if head:
        await send({"type": "http.response.body", "body": b""})
        return False
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip_on else None
    offset = 0
    while offset < size:
        if offset and delay > 0 and await _pause(receive, delay):
            return True
        length = min(chunk, size - offset)
        data = _pattern_chunk(offset, length)
        offset += length
        if compressor is not None:
            data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        await send({"type": "http.response.body", "body": data, "more_body": True})
    tail = compressor.flush() if compressor is not None else b""
    await send({"type": "http.response.body", "body": tail})
    return False
