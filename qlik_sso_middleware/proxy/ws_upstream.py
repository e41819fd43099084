"""The WebSocket relay's upstream client: one socket to Qlik on picows, whole messages, bounded buffers.

picows parses frames in C and hands each to a synchronous callback; this module turns that into what
the relay needs: `recv()` of whole messages (fragments reassembled, text as `str`, binary as
`bytes`), `send()` that waits while the socket's write buffer is over its high-water mark, and
`close()`. A slow browser cannot make the proxy buffer without limit: past `_PAUSE_MESSAGES` queued
messages or `_PAUSE_BYTES`, reading from Qlik pauses until the relay has caught up. The client costs
about half the CPU per message of the `websockets` client (`python -m benchmarks.engines`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
import sys
from typing import Any

from picows import (
    WSCloseCode,
    WSFrame,
    WSHandshakeError,
    WSListener,
    WSMsgType,
    WSProtocolError,
    WSTransport,
    ws_connect,
)

__all__ = ["UpstreamSocket", "connect"]

Message = str | bytes

# Qlik layouts can be many MiB: no frame size limit in practice (the largest picows accepts).
_MAX_FRAME = sys.maxsize
# Reading from Qlik pauses past this much queued for the browser, resumes at a quarter of it.
_PAUSE_MESSAGES = 16
_PAUSE_BYTES = 4 * 1024 * 1024
_CLOSE_TIMEOUT = 5.0


class UpstreamSocket(WSListener):
    """One WebSocket to Qlik. `recv()` returns None once it is closed; `close_info()` says how."""

    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport
        self.subprotocol: str | None = None
        self.read_pauses = 0
        self._queue: collections.deque[Message] = collections.deque()
        self._queued = 0  # bytes (characters for text) in `_queue`
        self._reading = True
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._parts: list[bytes] | None = None  # a fragmented message being reassembled
        self._parts_text = False
        self._disconnected = False

    # -- picows callbacks (synchronous, in the event loop) -------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if frame.fin and self._parts is None:
            if kind is WSMsgType.TEXT:
                try:
                    self._push(frame.get_payload_as_utf8_text())
                except UnicodeDecodeError:
                    raise _invalid_text() from None
                return
            if kind is WSMsgType.BINARY:
                self._push(frame.get_payload_as_bytes())
                return
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if self._parts is not None:
                raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, "expected a continuation frame")
            self._parts = [frame.get_payload_as_bytes()]
            self._parts_text = kind is WSMsgType.TEXT
        elif kind is WSMsgType.CONTINUATION:
            if self._parts is None:
                raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
            self._parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                data = b"".join(self._parts)
                self._parts = None
                if not self._parts_text:
                    self._push(data)
                    return
                try:
                    self._push(data.decode())
                except UnicodeDecodeError:
                    raise _invalid_text() from None
        elif kind is WSMsgType.CLOSE:
            # Qlik closes: answer with its code (RFC 6455 §5.5.1) and hang up.
            if not transport.is_close_frame_sent:
                code = frame.get_close_code()
                transport.send_close(code if code != WSCloseCode.NO_INFO else WSCloseCode.OK)
            transport.disconnect()
        # PING is answered by picows (auto pong); unsolicited PONGs are ignored.

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._disconnected = True
        self._wake()
        self.resume_writing()  # asyncio never resumes a transport lost while paused

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    # -- the relay's side ------------------------------------------------------------------------

    async def recv(self) -> Message | None:
        """The next whole message from Qlik, or None when the socket is closed."""
        while not self._queue:
            if self._disconnected:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._queue.popleft()
        self._queued -= len(message)
        if not self._reading and (
            len(self._queue) <= _PAUSE_MESSAGES // 4 and self._queued <= _PAUSE_BYTES // 4
        ):
            self._reading = True
            if not self._disconnected:
                self.transport.underlying_transport.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        """Send one message to Qlik; waits while the socket's write buffer is full."""
        kind = WSMsgType.TEXT if isinstance(message, str) else WSMsgType.BINARY
        self.transport.send(kind, message)
        if self._writable is not None:
            await asyncio.shield(self._writable)

    def close_info(self) -> tuple[int, str]:
        """How the socket ended: Qlik's close code and reason, else the close frame we failed it
        with (1007 for invalid UTF-8...), else 1006: the connection was just lost."""
        handshake = self.transport.close_handshake
        info = None if handshake is None else (handshake.recv or handshake.sent)
        if info is None:
            return 1006, ""
        code: int = info.code.value
        return (1005 if code == 0 else code), info.reason or ""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with `code` and `reason`, wait (bounded) for Qlik to hang up; idempotent."""
        transport = self.transport
        if not transport.is_disconnected:
            transport.send_close(WSCloseCode(code), reason.encode())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await _disconnected(transport)
            transport.disconnect(graceful=False)
        await _disconnected(transport)

    def abort(self, code: int = 1001) -> None:
        """Close without waiting (the browser is gone before the relay started)."""
        if not self.transport.is_disconnected:
            self.transport.send_close(WSCloseCode(code))
            self.transport.disconnect()

    # -- internals -------------------------------------------------------------------------------

    def _push(self, message: Message) -> None:
        self._queue.append(message)
        self._queued += len(message)
        self._wake()
        if self._reading and (len(self._queue) > _PAUSE_MESSAGES or self._queued > _PAUSE_BYTES):
            self._reading = False
            self.read_pauses += 1
            self.transport.underlying_transport.pause_reading()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _invalid_text() -> WSProtocolError:
    # picows answers it with close 1007 to Qlik; the browser then gets 1007 too.
    return WSProtocolError(WSCloseCode.INVALID_TEXT, "invalid UTF-8 in a text message")


def _hang_up(attempt: asyncio.Future[tuple[WSTransport, WSListener]]) -> None:
    """Close a connection nobody waits for any more once it is made (or forget its failure)."""
    if not attempt.cancelled() and attempt.exception() is None:
        attempt.result()[0].disconnect(graceful=False)


async def _disconnected(transport: WSTransport) -> None:
    # wait_disconnected re-raises the local failure that ended the socket (a protocol error): the
    # close code already tells the relay.
    with contextlib.suppress(Exception):
        await transport.wait_disconnected()


async def connect(
    url: str,
    *,
    headers: list[tuple[str, str]],
    subprotocols: list[str] | None,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    open_timeout: float,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> UpstreamSocket:
    """Open the WebSocket at `url` (the address to connect to; `headers` carry the Host Qlik sees).

    Raises `WSHandshakeError` (with `.response.status` when Qlik answered), `TimeoutError`, `WSError`
    or `OSError`. Redirects are not followed: a 302 from Qlik is an answer for the caller.
    """
    extra = list(headers)
    if subprotocols:
        extra.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    kwargs: dict[str, Any] = {}
    if server_hostname is not None:
        kwargs["server_hostname"] = server_hostname
    attempt = asyncio.ensure_future(
        ws_connect(
            UpstreamSocket,
            url,
            ssl_context=ssl_context,
            websocket_handshake_timeout=open_timeout,
            logger_name=logger,
            enable_auto_ping=False,
            enable_auto_pong=True,
            max_frame_size=_MAX_FRAME,
            extra_headers=extra,
            max_redirects=0,
            **kwargs,
        )
    )
    try:
        async with asyncio.timeout(open_timeout):
            # Shielded: picows leaves the socket open when cancelled mid-handshake.
            transport, listener = await asyncio.shield(attempt)
    except BaseException:
        attempt.add_done_callback(_hang_up)  # a timeout, or the browser went away
        raise
    if not isinstance(listener, UpstreamSocket):  # the connection was lost during the handshake
        transport.disconnect(graceful=False)
        raise ConnectionResetError("Qlik closed the connection during the WebSocket handshake")
    chosen = transport.response.headers.get("Sec-WebSocket-Protocol")
    if chosen is not None and chosen not in (subprotocols or ()):
        transport.disconnect(graceful=False)
        raise WSHandshakeError(f"Qlik chose a subprotocol the browser did not offer: {chosen!r}")
    listener.subprotocol = chosen
    return listener
