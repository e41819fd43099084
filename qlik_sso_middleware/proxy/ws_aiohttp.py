"""The relays' upstream WebSocket on aiohttp's client, behind the interface the relays already use.

Why: measured with `python -m benchmarks.engines`, aiohttp's client spends less CPU per small
round trip than `websockets`' (the engine socket's traffic is mostly small JSON-RPC messages), and
in the relay it carried 11-28 % more 100 B round trips per second in every quiet interleaved run
(README, "Dependencies"); aiohttp is already the proxy's HTTP engine. `ws_client.connect_relay`
opens this socket unless `ws_client.use_ws_client("websockets")` was called.

`AiohttpUpstream` offers what the relays use of websockets' `ClientConnection`, with the same
contract, so `ws_relay.py` and both relays stay as they are:
- iterating yields `str` for text and `bytes` for binary messages, whole (fragments reassembled,
  no size limit); it ends after Qlik's 1000/1001 close and raises websockets' `ConnectionClosed`
  (with the close frames received and sent) after any other end;
- Qlik's close is answered with the same code (`autoclose` off: aiohttp would answer 1000), its
  pings are answered; invalid UTF-8 fails the socket with 1007 both ways;
- `send`, `close(code, reason)`, `close_code`, `close_reason`, `subprotocol`, and `hang_up()`
  (1001 without waiting for Qlik's answer);
- the handshake never follows a redirect (a client middleware refuses every hop's 3xx before
  aiohttp's redirect loop sees it): the caller gets websockets' `InvalidStatus` with that status,
  as for any other non-101 answer; a timeout is `TimeoutError`, a socket error `OSError`.
- No cookie jar, no `User-Agent` of ours, no proxy from the environment, no compression. aiohttp
  logs no handshake header, so nothing secret reaches the logs.

One `ClientSession` per socket (a handshake is rare next to the messages it carries), closed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence

import aiohttp
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidHandshake, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response
from yarl import URL

__all__ = ["AiohttpUpstream", "connect_aiohttp"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NORMAL = frozenset({1000, 1001})
#: Close handshakes started by `hang_up`, kept until done (a bare task could be collected).
_HANGING_UP: set[asyncio.Task[None]] = set()


class _Redirected(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def _refuse_redirects(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    response = await handler(request)
    if response.status in _REDIRECTS:
        response.close()
        raise _Redirected(response.status)
    return response


def _invalid_status(status: int) -> InvalidStatus:
    return InvalidStatus(Response(status, "", Headers()))


class AiohttpUpstream:
    """An open upstream WebSocket (see the module docstring)."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        session: aiohttp.ClientSession,
        subprotocol: str | None = None,
    ) -> None:
        self._ws = ws
        self._session = session
        self._subprotocol = subprotocol
        self._rcvd: Close | None = None
        self._sent: Close | None = None
        self._rcvd_first = True

    @property
    def subprotocol(self) -> str | None:
        return self._subprotocol

    @property
    def close_code(self) -> int | None:
        if self._rcvd is not None:
            return self._rcvd.code
        return self._ws.close_code

    @property
    def close_reason(self) -> str:
        return self._rcvd.reason if self._rcvd is not None else ""

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        ws = self._ws
        while True:
            message = await ws.receive()
            kind = message.type
            if kind is aiohttp.WSMsgType.TEXT or kind is aiohttp.WSMsgType.BINARY:
                yield message.data
                continue
            if kind is aiohttp.WSMsgType.CLOSE:
                # aiohttp reports a close frame without a status code as 0: that is 1005.
                code = int(message.data or 0) or 1005
                self._rcvd = Close(code, message.extra or "")
                # Answer with Qlik's own code, as RFC 6455 §5.5.1 expects (1005 cannot be sent).
                await self._close_quietly(1000 if code == 1005 else code, self._rcvd.reason)
                if code in _NORMAL:
                    return
            elif kind is aiohttp.WSMsgType.ERROR:
                # aiohttp already failed the socket with the protocol's code (1007, 1002, ...).
                code = ws.close_code or 1006
                self._sent = Close(code, "") if code != 1006 else None
            raise self._closed()

    def _closed(self) -> ConnectionClosedError:
        both = self._rcvd is not None and self._sent is not None
        # Who closed first: Qlik (we answered) unless our close went out before Qlik's arrived.
        return ConnectionClosedError(self._rcvd, self._sent, self._rcvd_first if both else None)

    async def send(self, data: str | bytes) -> None:
        if self._ws.closed:
            raise self._closed()
        try:
            if isinstance(data, str):
                await self._ws.send_str(data)
            else:
                await self._ws.send_bytes(data)
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise self._closed() from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with `code` and `reason` (waiting for Qlik's answer, 5 s at most) and release
        the session."""
        try:
            await self._close_quietly(code, reason)
        finally:
            await self._session.close()

    async def _close_quietly(self, code: int, reason: str) -> None:
        if self._sent is None and not self._ws.closed:
            self._sent = Close(code, reason)
            self._rcvd_first = self._rcvd is not None
        with contextlib.suppress(ConnectionError, aiohttp.ClientError, asyncio.TimeoutError):
            await self._ws.close(code=code, message=reason.encode("utf-8"))

    def hang_up(self) -> None:
        """Close with 1001 (going away) without waiting: callable from an exception handler."""
        task = asyncio.get_running_loop().create_task(self._hang_up())
        _HANGING_UP.add(task)
        task.add_done_callback(_HANGING_UP.discard)

    async def _hang_up(self) -> None:
        transport = self._ws._response.connection
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await self.close(1001, "")
        # Qlik did not answer in time: drop the connection (the frame went out first).
        if transport is not None:
            transport.close()


async def connect_aiohttp(
    url: str,
    *,
    host_header: str,
    headers: Sequence[tuple[str, str]],
    subprotocols: Sequence[str] | None,
    open_timeout: float,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
) -> AiohttpUpstream:
    """Open the upstream socket at `url` (Qlik's address, already percent-encoded) presenting
    `host_header` as the Host (see the module docstring for the contract)."""
    session = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent",),
        trust_env=False,
        middlewares=(_refuse_redirects,),
    )
    try:
        offered = list(subprotocols or ())
        # The offer goes out ", "-joined like websockets' and browsers' (aiohttp joins with ","),
        # so aiohttp is not told about it: `_chosen_subprotocol` checks Qlik's choice instead.
        offer = [("Sec-WebSocket-Protocol", ", ".join(offered))] if offered else []
        async with asyncio.timeout(open_timeout):
            ws = await session.ws_connect(
                URL(url, encoded=True),
                headers=[("Host", host_header), *headers, *offer],
                ssl=ssl_context if ssl_context is not None else False,
                server_hostname=server_hostname,
                max_msg_size=0,
                compress=0,
                autoclose=False,
                autoping=True,
                heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
    except BaseException as exc:
        await session.close()
        if isinstance(exc, _Redirected):
            raise _invalid_status(exc.status) from None
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            if exc.status == 101:  # a 101 without a valid upgrade
                raise InvalidHandshake(exc.message) from exc
            raise _invalid_status(exc.status) from exc
        if isinstance(exc, aiohttp.ClientConnectionError) and not isinstance(exc, OSError):
            raise ConnectionError(str(exc)) from exc
        if isinstance(exc, aiohttp.ClientError) and not isinstance(exc, OSError):
            raise InvalidHandshake(str(exc)) from exc
        raise
    try:
        chosen = _chosen_subprotocol(ws, offered)
    except InvalidHandshake:
        await ws.close(code=1002)
        await session.close()
        raise
    return AiohttpUpstream(ws, session, chosen)


def _chosen_subprotocol(ws: aiohttp.ClientWebSocketResponse, offered: list[str]) -> str | None:
    """The subprotocol Qlik chose; one we did not offer fails the handshake (RFC 6455 §4.1)."""
    # aiohttp keeps the handshake response on the socket; it exposes the choice only when it
    # made the offer itself.
    chosen = ws._response.headers.get("Sec-WebSocket-Protocol")
    if chosen is None:
        return None
    if chosen not in offered:
        raise InvalidHandshake(f"Qlik chose a subprotocol it was not offered: {chosen!r}")
    return str(chosen)
