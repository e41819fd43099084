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

import asyncio
import json
import logging
import ssl
from typing import TYPE_CHECKING

import httpx
from starlette.types import Receive, Send
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..auth._proxy_login import session_cookie_from
from ..errors import QlikRejected, QlikTimeout, QlikUnavailable, RequestRefused
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from .request import ProxiedRequest
from .upstream import Upstream
from .ws_client import connect_no_redirects, hang_up, quiet_logger
from .ws_relay import browser_to_upstream, close_browser, run_relay

if TYPE_CHECKING:
    from ..core import QlikSSO

__all__ = ["forward_websocket"]

logger = logging.getLogger("qlik_sso_middleware.proxy.websocket")

_UPSTREAM_LOGGER = quiet_logger("qlik_sso_middleware.proxy.websocket.upstream")


class _SessionGone(Exception):
    """Qlik's first message said our session is not valid (mustAuthenticate)."""


async def forward_websocket(
    sso: QlikSSO,
    upstream: Upstream,
    req: ProxiedRequest,
    identity: QlikIdentity,
    receive: Receive,
    send: Send,
) -> None:
    session = await sso.session_for(identity, upstream, req.host)
    session, up = await _connect(sso, upstream, req, identity, session)
    try:
        await send({"type": "websocket.accept", "subprotocol": up.subprotocol})
    except BaseException:
        # The browser left while we were connecting: tell Qlik (1001) without waiting for it.
        hang_up(up)
        raise
    try:
        await _relay(sso, upstream, identity, session, up, receive, send)
    except _SessionGone:
        # Renew once and reconnect; the browser only ever sees the working socket.
        session = await sso.renew(identity, upstream, req.host, session)
        session, up = await _connect(sso, upstream, req, identity, session)
        try:
            await _relay(sso, upstream, identity, session, up, receive, send, first=False)
        except _SessionGone:  # pragma: no cover - _relay(first=False) never raises it
            raise


async def _csrf_token(
    sso: QlikSSO,
    upstream: Upstream,
    req: ProxiedRequest,
    identity: QlikIdentity,
    session: QlikSession,
) -> tuple[QlikSession, str | None]:
    """The session's `qlik-csrf-token` (Qlik's Nov-2024 WebSocket rule), fetched once per session.

    Asking for it is also a cheap probe of the session: when Qlik re-authenticates the user by
    header and issues a new cookie we adopt it; when it redirects to its login, we renew once.
    """
    cached = upstream.cached_csrf_token(session.cookie_value)
    if cached is not None:
        return session, cached
    # Concurrent sockets of one session share one probe: Qlik logs a user whose session it forgot
    # in again by header on *every* probe, and five at once exhaust its parallel-session cap.
    key = session.cookie_value
    probe = upstream.csrf_probes.get(key)
    if probe is None:
        probe = asyncio.create_task(_fetch_csrf_token(sso, upstream, req, identity, session))
        upstream.csrf_probes[key] = probe
        probe.add_done_callback(lambda _t: upstream.csrf_probes.pop(key, None))
    # shield: a browser that goes away must not cancel the probe other sockets wait for.
    return await asyncio.shield(probe)


async def _fetch_csrf_token(
    sso: QlikSSO,
    upstream: Upstream,
    req: ProxiedRequest,
    identity: QlikIdentity,
    session: QlikSession,
) -> tuple[QlikSession, str | None]:
    for attempt in (1, 2):
        base, headers = upstream.personal_api(identity, session, req.host)
        try:
            response = await upstream.client.get(base + "csrftoken", headers=headers)
        except httpx.TimeoutException as exc:
            raise QlikTimeout("Qlik did not answer qps/csrftoken in time") from exc
        except httpx.TransportError as exc:
            raise QlikUnavailable(f"Qlik unreachable at {upstream.target.url}") from exc
        if response.status_code in (301, 302, 303, 307, 308) and attempt == 1:
            session = await sso.renew(identity, upstream, req.host, session)
            continue
        renewed = session_cookie_from(response.headers.get_list("set-cookie"), session.cookie_name)
        if renewed is not None and renewed != session.cookie_value:
            session = await sso.adopt(identity, upstream, session, renewed, req.host)
            if session.cookie_value != renewed:
                # Qlik's answer belongs to a spare session (now ended): ask again with the kept one.
                if attempt == 1:
                    continue
                return session, None
        token: str | None = response.headers.get("qlik-csrf-token")
        if response.status_code != 200 or not token:
            # Qlik releases before November 2024 have no CSRF endpoint and need no token.
            return session, None
        upstream.remember_csrf_token(session.cookie_value, token)
        return session, token
    return session, None


async def _connect(
    sso: QlikSSO,
    upstream: Upstream,
    req: ProxiedRequest,
    identity: QlikIdentity,
    session: QlikSession,
    *,
    retry: bool = True,
) -> tuple[QlikSession, ClientConnection]:
    cached = upstream.cached_csrf_token(session.cookie_value) is not None
    session, token = await _csrf_token(sso, upstream, req, identity, session)
    query = req.upstream_query(websocket=True)
    if token is not None:
        query += (b"&" if query else b"?") + b"qlik-csrf-token=" + token.encode("ascii")
    headers = sso.header_policy.upstream_headers(
        req.headers,
        host=req.upstream_host(upstream),
        added=upstream.target.auth.upstream_headers(identity),
        session_cookie=session.cookie_header().encode("latin-1"),
        forwarded_for=req.forwarded_for(sso.trusted_proxies),
        forwarded_proto=(b"https" if req.scheme in ("wss", "https") else b"http"),
        keep_content_length=False,
    )
    host = headers[0][1].decode("latin-1")
    extra = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers[1:]]
    subprotocols = _subprotocols(req)
    scheme = "wss" if upstream.target.is_https else "ws"
    path = (upstream.upstream_raw_path(req.sub_path) + query).decode("ascii")
    # The URI carries the Host Qlik must see; host/port say where to actually connect.
    uri = f"{scheme}://{host}{path}"
    ssl_arg: ssl.SSLContext | None = upstream.ssl_context
    try:
        connection = await connect_no_redirects(
            uri,
            host=upstream.host,
            port=upstream.port,
            ssl=ssl_arg,
            server_hostname=upstream.host if ssl_arg is not None else None,
            additional_headers=extra,
            subprotocols=subprotocols,  # type: ignore[arg-type]
            compression=None,
            max_size=None,
            max_queue=16,
            ping_interval=None,
            open_timeout=upstream.target.timeouts.websocket_open,
            close_timeout=5,
            user_agent_header=None,
            proxy=None,
            logger=_UPSTREAM_LOGGER,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403) and cached and retry:
            # A restarted Qlik forgot the session and the token we cached for it: fetch the token
            # again (that probes and renews the session) and retry once.
            upstream.forget_csrf_token(session.cookie_value)
            return await _connect(sso, upstream, req, identity, session, retry=False)
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
            f"Qlik WebSocket unreachable at {upstream.target.url} ({type(exc).__name__})"
        ) from exc
    return session, connection


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
    sso: QlikSSO,
    upstream: Upstream,
    identity: QlikIdentity,
    session: QlikSession,
    up: ClientConnection,
    receive: Receive,
    send: Send,
    *,
    first: bool = True,
) -> None:
    """Relay until one side closes. Raises `_SessionGone` only before any browser frame went up."""
    browser_sent = 0

    def counted() -> None:
        nonlocal browser_sent
        browser_sent += 1

    async def qlik_to_browser() -> None:
        seen_first = not first
        closed: ConnectionClosed | None = None
        try:
            async for data in up:
                if isinstance(data, str):
                    notice = _notice(data)
                    if notice is not None:
                        if notice == "mustAuthenticate" and not seen_first and browser_sent == 0:
                            raise _SessionGone
                        if notice in ("OnSessionClosed", "OnSessionTimedOut", "mustAuthenticate"):
                            # The next request of this user gets a fresh session.
                            await sso.forget(identity, upstream, session)
                    seen_first = True
                    await send({"type": "websocket.send", "text": data})
                else:
                    seen_first = True
                    await send({"type": "websocket.send", "bytes": data})
        except ConnectionClosed as exc:
            closed = exc
        await close_browser(up, send, closed)

    await run_relay(
        up,
        qlik_to_browser(),
        browser_to_upstream(receive, up, counted),
        log=logger,
        label="WebSocket relay",
        reraise=(_SessionGone,),
    )
