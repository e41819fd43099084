"""The app's own WebSockets behind `qlik-sso serve`: one relay per browser socket.

Same order as the Qlik relay (`proxy/websocket.py`): connect to the app first, then accept the
browser with the subprotocol the app chose, so the app's refusal becomes a refusal of the browser's
handshake: the app's 4xx status (403 for a redirect), 502 when the app is down or fails; on servers
without the `websocket.http.response` extension a close before the accept (1008, 1011). Frames are
relayed as they are (text stays text, no size limit), close codes and reasons travel both ways, and
when either side ends the other is closed.

The caller (`AppProxy`) builds the handshake headers: the browser's minus hop-by-hop, handshake
fields and the proxy's private cookies, plus `X-Forwarded-*`. `Origin` passes unchanged: the app
does its own origin check (the middleware checks Origin only on Qlik's paths).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.types import Receive, Scope, Send
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from ..proxy.ws_client import UpstreamSocket, connect_relay, hang_up, quiet_logger
from ..proxy.ws_relay import browser_to_upstream, close_browser, run_relay
from ..responses import deny_handshake

__all__ = ["relay_app_websocket"]

logger = logging.getLogger("qlik_sso_middleware.serve")
# websockets logs every handshake header at DEBUG: the user's cookies for the app included.
_UPSTREAM_LOGGER = quiet_logger("qlik_sso_middleware.serve.websocket")
_OPEN_TIMEOUT = 10.0


class _Refused(Exception):
    def __init__(self, status: int, close_code: int, text: str) -> None:
        super().__init__(text)
        self.status, self.close_code, self.text = status, close_code, text


async def relay_app_websocket(
    uri: str, headers: list[tuple[str, str]], scope: Scope, receive: Receive, send: Send
) -> None:
    """Relay the browser's socket (`scope`) to `uri` (`ws(s)://`) until one side closes."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    try:
        up = await _connect(uri, headers, list(scope.get("subprotocols") or ()))
    except _Refused as refused:
        # Before the accept the server answers the handshake itself (403); the code is advisory.
        await deny_handshake(
            scope,
            send,
            refused.status,
            refused.text.encode(),
            "text/plain; charset=utf-8",
            refused.close_code,
        )
        return
    try:
        await send({"type": "websocket.accept", "subprotocol": up.subprotocol})
    except BaseException:
        # The browser left while we were connecting: tell the app (1001) without waiting for it.
        hang_up(up)
        raise
    await _relay(up, receive, send)


async def _connect(
    uri: str, headers: list[tuple[str, str]], subprotocols: list[str]
) -> UpstreamSocket:
    try:
        return await connect_relay(
            uri,
            headers=headers,
            subprotocols=subprotocols,
            open_timeout=_OPEN_TIMEOUT,
            logger=_UPSTREAM_LOGGER,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        # The path only: apps put tokens in WebSocket query strings.
        logger.info("app answered %d to WebSocket %s", status, urlsplit(uri).path)
        if 400 <= status < 500:
            raise _Refused(status, 1008, "The application refused the WebSocket") from exc
        if 300 <= status < 400:
            raise _Refused(403, 1008, "The application refused the WebSocket") from exc
        raise _Refused(502, 1011, "The application is not available") from exc
    except InvalidURI as exc:  # e.g. a '#' in the browser's request target
        raise _Refused(400, 1008, "Bad WebSocket request") from exc
    except (TimeoutError, OSError, InvalidHandshake) as exc:
        logger.warning("app WebSocket %s failed: %s", urlsplit(uri).path, type(exc).__name__)
        raise _Refused(502, 1011, "The application is not available") from exc


async def _relay(up: UpstreamSocket, receive: Receive, send: Send) -> None:
    async def app_to_browser() -> None:
        closed: ConnectionClosed | None = None
        try:
            async for data in up:
                key = "text" if isinstance(data, str) else "bytes"
                await send({"type": "websocket.send", key: data})
        except ConnectionClosed as exc:
            closed = exc
        await close_browser(up, send, closed)

    await run_relay(
        up,
        app_to_browser(),
        browser_to_upstream(receive, up),
        log=logger,
        label="app WebSocket relay",
    )
