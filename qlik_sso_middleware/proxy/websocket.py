"""WebSocket forwarding: the engine socket (`/<prefix>/app/<appId>`) with the user's Qlik session.

Order matters: the browser's Origin was checked before we got here; we connect upstream first and
only then accept the browser, with the subprotocol Qlik chose, so a refusal upstream becomes a
refusal of the handshake. Frames are relayed as they are (no re-encoding, no size limit: Qlik layouts
can be many MiB), close codes and reasons travel both ways.

Upstream client: the `websockets` library (asyncio implementation). It is already the engine of
uvicorn's default WebSocket server, frames with a C-accelerated mask, takes `max_size=None`, and lets
us connect to Qlik's address while presenting the browser's `Host` (Qlik builds URLs from it).
"""

from __future__ import annotations

import contextlib
import json
import logging

from starlette.types import Receive, Send
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..errors import QlikRejected, QlikTimeout, QlikUnavailable, RequestRefused
from .request import ProxiedRequest
from .route import Route
from .session import ForwardingSession
from .ws_client import UpstreamSocket, connect_relay, hang_up, quiet_logger
from .ws_relay import browser_to_upstream, close_browser, run_relay

__all__ = ["forward_websocket"]

logger = logging.getLogger("qlik_sso_middleware.proxy.websocket")

_UPSTREAM_LOGGER = quiet_logger("qlik_sso_middleware.proxy.websocket.upstream")


class _SessionGone(Exception):
    """Qlik's first message said our session is not valid (mustAuthenticate)."""


#: How much of the browser's opening messages a first socket keeps for a replay: the calls a
#: page makes as it opens (OpenDoc, layouts), not a flood.
EARLY_MESSAGES = 64
EARLY_CHARS = 1024 * 1024


class _EarlyMessages:
    """The browser's messages sent up a first socket before Qlik's first message.

    The browser may send as soon as its socket is open (enigma.js sends OpenDoc at once), and Qlik
    speaks first. When Qlik's first message is mustAuthenticate, Qlik had no session for that
    socket and acted on none of them: they are sent again, in order, on the socket opened with the
    renewed session (without this, a call made during a Qlik restart was never answered). Kept
    until Qlik's first message shows the session good, and within a bound: past it the socket
    cannot be replaced, and the browser gets Qlik's mustAuthenticate as it came.
    """

    __slots__ = ("chars", "messages", "overflowed", "settled")

    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.chars = 0
        self.overflowed = False
        self.settled = False

    def add(self, data: str | bytes) -> None:
        if self.settled or self.overflowed:
            return
        self.chars += len(data)
        if len(self.messages) >= EARLY_MESSAGES or self.chars > EARLY_CHARS:
            self.overflowed = True
            self.messages.clear()
            return
        self.messages.append(data)

    def settle(self) -> None:
        """Qlik's first message was not mustAuthenticate: nothing will be replayed."""
        self.settled = True
        self.messages.clear()

    @property
    def replayable(self) -> bool:
        return not (self.settled or self.overflowed)


async def forward_websocket(
    route: Route,
    session: ForwardingSession,
    req: ProxiedRequest,
    receive: Receive,
    send: Send,
) -> None:
    """Connect to Qlik with `session`, accept the browser, relay until either side closes."""
    await session.open()
    up = await _connect(route, session, req)
    try:
        await send({"type": "websocket.accept", "subprotocol": up.subprotocol})
    except BaseException:
        # The browser left while we were connecting: tell Qlik (1001) without waiting for it.
        hang_up(up)
        raise
    early = _EarlyMessages()
    try:
        await _relay(session, up, receive, send, early=early)
    except _SessionGone:
        # Renew once and reconnect; the browser only ever sees the working socket, and what it
        # had already sent reaches Qlik on that socket.
        await session.renew()
        up = await _connect(route, session, req)
        try:
            with contextlib.suppress(ConnectionClosed):  # the relay below reports the close
                for message in early.messages:
                    await up.send(message)
        except BaseException:
            hang_up(up)
            raise
        await _relay(session, up, receive, send)


async def _connect(
    route: Route, session: ForwardingSession, req: ProxiedRequest, *, retry: bool = True
) -> UpstreamSocket:
    token = await session.websocket_token()
    query = req.upstream_query(websocket=True)
    if token is not None:
        query += (b"&" if query else b"?") + b"qlik-csrf-token=" + token.encode("ascii")
    headers = route.header_policy.upstream_headers(
        req.headers,
        host=req.upstream_host(route.host_header),
        added=session.identity_headers(),
        session_cookie=session.cookie_header(),
        forwarded_for=req.forwarded_for(route.trusted_proxies),
        forwarded_proto=(b"https" if req.scheme in ("wss", "https") else b"http"),
        keep_content_length=False,
    )
    host = headers[0][1].decode("latin-1")
    extra = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers[1:]]
    scheme = "wss" if route.is_https else "ws"
    path = route.base_path + req.sub_path + query.decode("ascii")
    # The URI carries the Host Qlik must see; host/port say where to actually connect.
    uri = f"{scheme}://{host}{path}"
    tls = route.ssl_context
    try:
        return await connect_relay(
            uri,
            headers=extra,
            subprotocols=_subprotocols(req),
            open_timeout=route.websocket_open_timeout,
            logger=_UPSTREAM_LOGGER,
            host=route.host,
            port=route.port,
            ssl=tls,
            server_hostname=route.host if tls is not None else None,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403) and retry and await session.handshake_refused():
            # A restarted Qlik forgot the session and the token we cached for it.
            return await _connect(route, session, req, retry=False)
        if status in (401, 403):
            raise RequestRefused(
                "Qlik refused the WebSocket (origin not in the virtual proxy's host allow list, "
                "or CSRF token rejected)",
                status_code=403,
            ) from exc
        raise QlikRejected(f"Qlik answered {status} to the WebSocket handshake") from exc
    except TimeoutError as exc:
        raise QlikTimeout("Qlik did not complete the WebSocket handshake in time") from exc
    except (OSError, InvalidHandshake) as exc:
        raise QlikUnavailable(
            f"Qlik WebSocket unreachable at {route.origin} ({type(exc).__name__})"
        ) from exc


def _subprotocols(req: ProxiedRequest) -> list[str] | None:
    values = [v for k, v in req.headers if k == b"sec-websocket-protocol"]
    if not values:
        return None
    protocols: list[str] = []
    for value in values:
        protocols.extend(p.strip() for p in value.decode("latin-1").split(",") if p.strip())
    return protocols or None


def _notice(data: str) -> str | None:
    """The method of a Qlik notification (`OnSessionClosed`…), read only for small notices."""
    # Cheap filters first: notices are small JSON-RPC messages without an "id".
    if len(data) > 4096 or '"method"' not in data or '"id"' in data:
        return None
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if not isinstance(message, dict) or "id" in message:
        return None
    method = message.get("method")
    if method == "OnAuthenticationInformation":
        params = message.get("params")
        if isinstance(params, dict) and params.get("mustAuthenticate") is True:
            return "mustAuthenticate"
        return None
    return str(method) if isinstance(method, str) else None


async def _relay(
    session: ForwardingSession,
    up: UpstreamSocket,
    receive: Receive,
    send: Send,
    *,
    early: _EarlyMessages | None = None,
) -> None:
    """Relay until one side closes. With `early` (a first socket), the browser's messages are
    kept there until Qlik's first message, and `_SessionGone` is raised if that message is
    mustAuthenticate while they can still be replayed."""

    async def qlik_to_browser() -> None:
        closed: ConnectionClosed | None = None
        try:
            async for data in up:
                if isinstance(data, str):
                    notice = _notice(data)
                    if early is not None and not early.settled:
                        if notice == "mustAuthenticate" and early.replayable:
                            raise _SessionGone
                        early.settle()
                    if notice in ("OnSessionClosed", "OnSessionTimedOut", "mustAuthenticate"):
                        # The next request of this user gets a fresh session.
                        await session.ended()
                    await send({"type": "websocket.send", "text": data})
                else:
                    if early is not None and not early.settled:
                        early.settle()
                    await send({"type": "websocket.send", "bytes": data})
        except ConnectionClosed as exc:
            closed = exc
        await close_browser(up, send, closed)

    await run_relay(
        up,
        qlik_to_browser(),
        browser_to_upstream(receive, up, early.add if early is not None else None),
        log=logger,
        label="WebSocket relay",
        reraise=(_SessionGone,),
        send=send,
    )
