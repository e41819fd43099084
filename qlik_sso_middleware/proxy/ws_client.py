"""What both WebSocket relays (Qlik's engine socket, `serve`'s app sockets) need from the client side.

- `connect_no_redirects`: websockets' `connect` follows redirects by default; a 302 during the
  handshake (Qlik's redirect to its login, an app's to its own) is an answer to act on, not to follow.
  `connect_relay` opens it the way a relay needs it.
- `quiet_logger`: websockets logs every handshake header at DEBUG, the session cookie and identity
  header included; the adapter drops DEBUG and keeps the rest.
- `wire_close_code`: close codes that must not be sent on the wire (RFC 6455 §7.4.1) mapped to ones
  that may.
- `hang_up`: leave an open upstream socket at once with 1001 (going away), without awaiting the
  peer's answer (the browser left while we were connecting).
- `use_ws_client`: which library opens the upstream socket, `"aiohttp"` (the default: faster per
  small message in the relay, README "Dependencies") or `"websockets"` (`ws_aiohttp.py` keeps
  websockets' contract); `UpstreamSocket` is what the relays use of either.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from .ws_aiohttp import AiohttpUpstream, connect_aiohttp

__all__ = [
    "WS_CLIENTS",
    "UpstreamSocket",
    "connect_no_redirects",
    "connect_relay",
    "current_ws_client",
    "hang_up",
    "quiet_logger",
    "use_ws_client",
    "wire_close_code",
]

#: The libraries that can open a relay's upstream socket (see `use_ws_client`).
WS_CLIENTS = ("websockets", "aiohttp")
_client = {"name": "aiohttp"}


def use_ws_client(name: str) -> None:
    """Open every relay's upstream socket with `name` from now on (benchmarks and tests compare
    them; the default is the measured faster one, README "Dependencies")."""
    if name not in WS_CLIENTS:
        raise ValueError(f"{name!r} is not one of {', '.join(WS_CLIENTS)}")
    _client["name"] = name


def current_ws_client() -> str:
    """The library `connect_relay` uses now."""
    return _client["name"]


class UpstreamSocket(Protocol):
    """What the relays use of an open upstream socket (websockets' `ClientConnection` or
    `ws_aiohttp.AiohttpUpstream`). Iterating yields whole messages and raises websockets'
    `ConnectionClosed` after an abnormal end."""

    @property
    def subprotocol(self) -> str | None: ...

    @property
    def close_code(self) -> int | None: ...

    @property
    def close_reason(self) -> str | None: ...

    def __aiter__(self) -> AsyncIterator[str | bytes]: ...

    async def send(self, message: str | bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


_RESERVED_CLOSE = {1005: 1000, 1006: 1011, 1015: 1011}


def wire_close_code(code: int) -> int:
    """`code`, or the closest code that may be sent in a close frame."""
    return _RESERVED_CLOSE.get(code, code)


class _NoDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


def quiet_logger(name: str) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """Logger `name` for the websockets client, without DEBUG (it would log secrets)."""
    return _NoDebug(logging.getLogger(name))


class connect_no_redirects(connect):  # lower case: used like the `connect` it extends
    """`websockets.asyncio.client.connect` that never follows a redirect."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


async def connect_relay(
    uri: str,
    *,
    headers: Sequence[tuple[str, str]],
    subprotocols: Sequence[str] | None,
    open_timeout: float,
    logger: logging.LoggerAdapter,  # type: ignore[type-arg]
    host: str | None = None,
    port: int | None = None,
    ssl: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> UpstreamSocket:
    """The upstream socket of a relay: frames pass as they are (no compression, no size limit:
    Qlik layouts can be many MiB), no pings of our own (the browser's pass through), a short
    queue (back-pressure reaches the sender), no `User-Agent` of ours, no proxy from the
    environment. `uri` carries the Host to present; `host`/`port` say where to connect when that
    is elsewhere, `ssl`/`server_hostname` how to verify it."""
    if _client["name"] == "aiohttp":
        parts = urlsplit(uri)
        where_host = host or parts.hostname or ""
        where_port = port or parts.port or (443 if parts.scheme == "wss" else 80)
        shown = f"[{where_host}]" if ":" in where_host else where_host
        scheme = "https" if parts.scheme == "wss" else "http"
        target = (
            f"{scheme}://{shown}:{where_port}{uri[len(parts.scheme) + 3 + len(parts.netloc) :]}"
        )
        return await connect_aiohttp(
            target,
            host_header=parts.netloc,
            headers=headers,
            subprotocols=subprotocols,
            open_timeout=open_timeout,
            ssl_context=ssl if ssl is not None else (_default_tls() if scheme == "https" else None),
            server_hostname=server_hostname,
        )
    where: dict[str, Any] = {}
    if host is not None:
        where.update(host=host, port=port, ssl=ssl, server_hostname=server_hostname)
    connection: ClientConnection = await connect_no_redirects(
        uri,
        additional_headers=list(headers),
        subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None,
        compression=None,
        max_size=None,
        max_queue=16,
        ping_interval=None,
        open_timeout=open_timeout,
        close_timeout=5,
        user_agent_header=None,
        proxy=None,
        logger=logger,
        **where,
    )
    return connection


def _default_tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def hang_up(up: UpstreamSocket) -> None:
    # Synchronous on purpose (callable from an exception handler): websockets has no public
    # non-awaiting close with a code, so the close frame goes through its sans-I/O protocol.
    if isinstance(up, AiohttpUpstream):
        up.hang_up()
        return
    assert isinstance(up, ClientConnection)
    with contextlib.suppress(Exception):
        up.protocol.send_close(1001, "")
        for data in up.protocol.data_to_send():
            if data:
                up.transport.write(data)
    up.transport.close()
