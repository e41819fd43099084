"""The message pump both WebSocket relays run (Qlik's engine socket, `serve`'s app sockets).

One task per direction; when either ends, the other is cancelled and the upstream socket closed.
What differs between the relays (Qlik's notices, session renewal) stays in their own downward loop;
the browser's side, the close hand-over and the task bookkeeping are here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.types import Receive, Send
from websockets.exceptions import ConnectionClosed

from ..errors import private_close_code
from .ws_client import UpstreamSocket, wire_close_code

__all__ = ["browser_to_upstream", "close_browser", "run_relay", "send_close"]

# How long the downward side may take to hand the upstream's close to the browser once the
# upstream is closed: only frames already received are left to pass on.
_HANDOVER_SECONDS = 10.0


async def browser_to_upstream(
    receive: Receive, up: UpstreamSocket, on_message: Callable[[str | bytes], None] | None = None
) -> None:
    """Forward the browser's messages as they are (text stays text) until it disconnects, then
    close the upstream socket with the browser's code and reason. `on_message` sees each message
    before it is sent (so it has it even if this task is cancelled during the send)."""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            data: str | bytes = text if text is not None else message.get("bytes") or b""
            if on_message is not None:
                on_message(data)
            await up.send(data)
        elif kind == "websocket.disconnect":
            code = wire_close_code(int(message.get("code", 1000)))
            await up.close(code, message.get("reason") or "")
            return


async def close_browser(up: UpstreamSocket, send: Send, closed: ConnectionClosed | None) -> None:
    """Close the browser's socket the way the upstream one ended.

    The closing frames tell how it ended even before the TCP connection is gone (when
    `up.close_code` is still unset): the upstream's close, else the one we failed it with (1007 for
    invalid UTF-8 from upstream).
    """
    closing = (closed.rcvd or closed.sent) if closed is not None else None
    if closing is not None:
        code, reason = closing.code, closing.reason
    else:
        code = up.close_code if up.close_code is not None else 1006
        reason = up.close_reason or ""
    await send_close(send, wire_close_code(code), reason)


async def send_close(send: Send, code: int, reason: str = "") -> None:
    """Close the browser's socket with `code` and `reason`.

    daphne (autobahn) lets an application close only with 1000 or 3000-4999 and raises on the
    protocol's own codes (1001-1015). There the same meaning goes out in the private range,
    4000 + (code - 1000): 1008 → 4008, 1011 → 4011 (README, "ASGI servers")."""
    try:
        await send({"type": "websocket.close", "code": code, "reason": reason})
    except Exception:
        if private_close_code(code) == code:
            raise
        await send({"type": "websocket.close", "code": private_close_code(code), "reason": reason})


async def _close_after_error(send: Send, code: int) -> None:
    with contextlib.suppress(Exception):  # the browser may be gone already
        await send_close(send, code)


async def run_relay(
    up: UpstreamSocket,
    downward: Coroutine[Any, Any, None],
    upward: Coroutine[Any, Any, None],
    *,
    log: logging.Logger,
    label: str,
    reraise: tuple[type[BaseException], ...] = (),
    send: Send | None = None,
) -> None:
    """Run both directions until one ends; then stop the other and close `up`.

    An exception of a `reraise` type from either direction propagates (after the clean-up); others
    are logged, a browser leaving (`OSError` from the server) only at DEBUG. After any other error
    both sockets are closed with 1011, or 1009 when the app server refused a message as too big
    (daphne's default limit is 1 MiB each way: README, "ASGI servers"; daphne gets 4009/4011), so the browser learns it
    at once instead of waiting on a socket nothing feeds any more (`send` given).
    """
    down = asyncio.create_task(downward)
    rising = asyncio.create_task(upward)
    code = 1000
    try:
        done, _ = await asyncio.wait({down, rising}, return_when=asyncio.FIRST_COMPLETED)
        if down not in done and isinstance(rising.exception(), ConnectionClosed):
            # The upstream closed while the browser was sending: the downward side still holds
            # the upstream's last frames and its close code, and is the one that closes the
            # browser. Cancelled now, the browser would get no close frame at all (uvicorn's
            # websockets-sansio then drops the TCP connection: 1006 at the browser).
            if (await asyncio.wait({down}, timeout=_HANDOVER_SECONDS))[0]:
                done = {down, rising}
            else:
                code = 1011
        for task in done:
            exc = task.exception()
            if exc is None or isinstance(exc, ConnectionClosed):
                continue
            if isinstance(exc, reraise):
                raise exc
            level = logging.DEBUG if isinstance(exc, OSError) else logging.WARNING
            log.log(level, "%s ended with %s", label, type(exc).__name__)
            if not isinstance(exc, OSError):
                code = 1009 if type(exc).__name__ == "PayloadExceededError" else 1011
    finally:
        for task in (down, rising):
            task.cancel()
        await asyncio.gather(down, rising, return_exceptions=True)
        if code != 1000 and send is not None:
            await _close_after_error(send, code)
        await up.close(code)
