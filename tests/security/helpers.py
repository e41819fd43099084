"""Raw-socket helpers for the attack matrix: requests byte for byte, WebSocket upgrades, assertions.

httpx and websockets normalise what they send (header case, duplicates, paths), so attacks are
written to a socket as bytes. Every helper is bounded in time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from qlik_sso_middleware.core import QlikSSO
from qlik_sso_middleware.testing import QlikSimulator, RecordedRequest

IO_TIMEOUT = 10.0
#: A value that must never reach Qlik: a spoofed identity.
MALLORY = "ACME\\mallory"


@dataclass
class Stack:
    """A simulator, the test app behind the middleware, and where it listens (`front`: the URL
    is that front proxy's, in offload mode: it sends Qlik the session cookie, no identity header)."""

    sim: QlikSimulator
    url: str
    sso: QlikSSO
    front: str | None = None

    @property
    def offload(self) -> bool:
        return self.front is not None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def proxied(self) -> list[RecordedRequest]:
        return [r for r in self.sim.requests if r.port == "proxy"]


@dataclass
class RawResponse:
    """What came back on a raw connection: status (None if the server just closed) and bytes."""

    status: int | None
    head: bytes
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def build_request(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    *,
    host: str | None,
    body: bytes = b"",
    raw_header_block: bytes = b"",
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines.extend(f"{k}: {v}" for k, v in headers)
    if body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n" + raw_header_block + b"\r\n" + body


async def raw_exchange(port: int, data: bytes) -> RawResponse:
    """Write `data`, read until the server closes (bounded), split status/head/body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        chunks: list[bytes] = []
        async with asyncio.timeout(IO_TIMEOUT):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)
    raw = b"".join(chunks)
    return parse_response(raw)


def parse_response(raw: bytes) -> RawResponse:
    if not raw.startswith(b"HTTP/"):
        return RawResponse(None, raw, b"")
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return RawResponse(status, head, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


async def raw_http(
    stack: Stack,
    method: str,
    target: str,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    *,
    user: str | None = "alice",
    host: str | None = "",
    body: bytes = b"",
    raw_header_block: bytes = b"",
) -> RawResponse:
    """One request byte for byte; `user` adds the app's login cookie; `host=""` uses the real one."""
    all_headers = list(headers)
    if user is not None:
        all_headers.append(("Cookie", f"app_user={user}"))
    all_headers.append(("Accept", "application/json"))
    data = build_request(
        method,
        target,
        all_headers,
        host=stack.host if host == "" else host,
        body=body,
        raw_header_block=raw_header_block,
    )
    return await raw_exchange(stack.port, data)


@dataclass
class RawUpgrade:
    """A raw WebSocket handshake's outcome: status, and the first server frame if it was 101."""

    status: int | None
    head: bytes
    first_text: str | None
    close_code: int | None


async def raw_websocket(
    stack: Stack,
    target: str,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    *,
    user: str | None = "alice",
    origin: str | None = "",
    host: str | None = "",
    raw_header_block: bytes = b"",
) -> RawUpgrade:
    """Open a WebSocket by hand (any headers), read the first frame, close the socket."""
    key = base64.b64encode(os.urandom(16)).decode()
    all_headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if origin is not None:
        all_headers.append(("Origin", stack.url if origin == "" else origin))
    if user is not None:
        all_headers.append(("Cookie", f"app_user={user}"))
    all_headers.extend(headers)
    lines = [f"GET {target} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {stack.host if host == '' else host}")
    lines.extend(f"{k}: {v}" for k, v in all_headers)
    data = "\r\n".join(lines).encode("latin-1") + b"\r\n" + raw_header_block + b"\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(IO_TIMEOUT):
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                head = exc.partial
            if not head.startswith(b"HTTP/"):
                return RawUpgrade(None, head, None, None)
            status = int(head.split(b" ", 2)[1])
            if status != 101:
                return RawUpgrade(status, head, None, None)
            opcode, payload = await _read_frame(reader)
        if opcode == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            return RawUpgrade(101, head, None, code)
        text = payload.decode("utf-8", "replace") if opcode == 0x1 else None
        # Close politely (masked close frame, code 1000).
        writer.write(bytes([0x88, 0x82]) + b"\x00\x00\x00\x00" + (1000).to_bytes(2, "big"))
        await writer.drain()
        return RawUpgrade(101, head, text, None)
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(length)


def values_seen(sim: QlikSimulator) -> list[str]:
    """Every header value, cookie, path and query Qlik received, for 'never reached' checks."""
    seen: list[str] = []
    for record in sim.requests:
        seen.extend(v for _, v in record.headers)
        seen.extend(f"{k}={v}" for k, v in record.cookies.items())
        seen.extend((record.path, record.query))
    for frame in sim.frames:
        if isinstance(frame.data, str):
            seen.append(frame.data)
    return seen


def assert_never_reached(sim: QlikSimulator, *needles: str) -> None:
    for value in values_seen(sim):
        for needle in needles:
            assert needle.lower() not in value.lower(), f"{needle!r} reached Qlik in {value!r}"


def simulator_secrets(sim: QlikSimulator) -> set[str]:
    """Every session id, CSRF token, ticket and xrfkey the simulator handed out or received."""
    found: set[str] = set()
    for session in sim._state.history:
        found.update({session.id, session.csrf_token})
    for record in sim.requests:
        query = {k.lower(): v for k, v in parse_qs(record.query).items()}
        for name in ("qlikticket", "xrfkey", "qlik-csrf-token"):
            found.update(query.get(name, []))
        found.update(record.header("x-qlik-xrfkey"))
        found.update(record.cookies.values())
    if sim.certificates is not None:
        key = Path(sim.certificates.client_key).read_text()
        # A line from the middle of the PEM body is enough to recognise it.
        found.update(line for line in key.splitlines()[1:-1][2:4])
    return {s for s in found if len(s) >= 8}


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = []
    for record in caplog.records:
        if record.name.startswith("qlik_sso_middleware.testing"):
            continue
        text = f"{record.name} {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += "".join(traceback.format_exception(record.exc_info[1]))
        texts.append(text)
    return texts


def assert_no_secret(texts: Iterable[str], secrets: set[str]) -> None:
    assert secrets, "the flow produced no secrets: the test would prove nothing"
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret leaked into: {text[:300]!r}"
