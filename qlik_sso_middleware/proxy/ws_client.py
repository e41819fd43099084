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
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

__all__ = ["connect_no_redirects", "connect_relay", "hang_up", "quiet_logger", "wire_close_code"]

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


def connect_relay(
    uri: str,
    *,
    headers: Sequence[tuple[str, str]],
    subprotocols: Sequence[str] | None,
    open_timeout: float,
    logger: logging.LoggerAdapter,  # type: ignore[type-arg]
    **where: Any,
) -> connect_no_redirects:
    """The upstream socket of a relay: frames pass as they are (no compression, no size limit:
    Qlik layouts can be many MiB), no pings of our own (the browser's pass through), a short
    queue (back-pressure reaches the sender), no `User-Agent` of ours, no proxy from the
    environment. `where` is websockets' `host`/`port`/`ssl`/`server_hostname`, when given."""
    return connect_no_redirects(
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


def hang_up(up: ClientConnection) -> None:
    # Synchronous on purpose (callable from an exception handler): websockets has no public
    # non-awaiting close with a code, so the close frame goes through its sans-I/O protocol.
    with contextlib.suppress(Exception):
        up.protocol.send_close(1001, "")
        for data in up.protocol.data_to_send():
            if data:
                up.transport.write(data)
    up.transport.close()
