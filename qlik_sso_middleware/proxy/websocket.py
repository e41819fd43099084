"""WebSocket forwarding: the engine socket (`/<prefix>/app/<appId>`) with the user's Qlik session.

Order matters: the browser's Origin was checked before we got here; we connect upstream first and
only then accept the browser, with the subprotocol Qlik chose, so a refusal upstream becomes a
refusal of the handshake. Frames are relayed as they are (no re-encoding, no size limit: Qlik layouts
can be many MiB), close codes and reasons travel both ways.

Upstream client: picows (`ws_upstream.py`), about half the CPU per message of the `websockets`
client (benchmarks/README.md). It connects to Qlik's address while presenting the `Host` the header
policy chose (Qlik builds URLs from it). Buffers are bounded both ways: reading from Qlik pauses while
the browser is slow to take messages, and sending to Qlik waits while its socket's buffer is full.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

import httpx
from picows import WSError, WSHandshakeError, WSInvalidStatusError
from starlette.types import Receive, Send

from ..auth._proxy_login import session_cookie_from
from ..errors import QlikRejected, QlikTimeout, QlikUnavailable, RequestRefused
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from .request import ProxiedRequest
from .upstream import Upstream
from .ws_upstream import UpstreamSocket, connect

if TYPE_CHECKING:
    from ..core import QlikSSO

__all__ = ["forward_websocket"]

logger = logging.getLogger("qlik_sso_middleware.proxy.websocket")

# Close codes that must not be sent on the wire (RFC 6455 §7.4.1).
_RESERVED_CLOSE = {1005: 1000, 1006: 1011, 1015: 1011}


class _NoDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The upstream client's logger without DEBUG: picows logs the handshake request and response
    at its level 9, the Qlik session cookie and the identity header included."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_UPSTREAM_LOGGER = _NoDebug(logging.getLogger("qlik_sso_middleware.proxy.websocket.upstream"))


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
        up.abort()  # the browser left while we were connecting
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
) -> tuple[QlikSession, UpstreamSocket]:
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
    # The URL says where to connect (Qlik's address); the Host header is the one Qlik must see.
    scheme = "wss" if upstream.target.is_https else "ws"
    address = f"[{upstream.host}]" if ":" in upstream.host else upstream.host
    path = (upstream.upstream_raw_path(req.sub_path) + query).decode("ascii")
    try:
        connection = await connect(
            f"{scheme}://{address}:{upstream.port}{path}",
            headers=[(k.decode("latin-1"), _header_value(v)) for k, v in headers],
            subprotocols=_subprotocols(req),
            ssl_context=upstream.ssl_context,
            server_hostname=upstream.host if upstream.ssl_context is not None else None,
            open_timeout=upstream.target.timeouts.websocket_open,
            logger=_UPSTREAM_LOGGER,
        )
    except WSHandshakeError as exc:
        status = _status(exc)
        if status is None:
            raise QlikUnavailable(
                f"Qlik WebSocket unreachable at {upstream.target.url} ({type(exc).__name__})"
            ) from exc
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
    except (OSError, WSError) as exc:
        raise QlikUnavailable(
            f"Qlik WebSocket unreachable at {upstream.target.url} ({type(exc).__name__})"
        ) from exc
    return session, connection


def _header_value(value: bytes) -> str:
    """A header value for picows, which sends values UTF-8 encoded: ASCII and UTF-8 reach Qlik
    byte for byte; other bytes (latin-1 from a browser, never seen in practice) go as UTF-8."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _status(exc: WSHandshakeError) -> int | None:
    """The HTTP status Qlik refused the handshake with; None if its answer was no valid refusal."""
    if isinstance(exc, WSInvalidStatusError) and exc.response is not None:
        return int(exc.response.status)
    if exc.response is None:
        # picows parses only the statuses `http.HTTPStatus` knows: read others from the status line.
        line = (exc.raw_header or b"").split(b"\r\n", 1)[0].split()
        if len(line) >= 2 and line[0].startswith(b"HTTP/1.") and line[1].isdigit():
            return int(line[1]) if line[1] != b"101" else None
    return None


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
    up: UpstreamSocket,
    receive: Receive,
    send: Send,
    *,
    first: bool = True,
) -> None:
    """Relay until one side closes. Raises `_SessionGone` only before any browser frame went up."""
    browser_sent = 0

    async def browser_to_qlik() -> None:
        nonlocal browser_sent
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                browser_sent += 1
                await up.send(text if text is not None else message.get("bytes") or b"")
            elif kind == "websocket.disconnect":
                code = int(message.get("code", 1000))
                code = _RESERVED_CLOSE.get(code, code)
                await up.close(code, message.get("reason") or "")
                return

    async def qlik_to_browser() -> None:
        seen_first = not first
        while (data := await up.recv()) is not None:
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
        code, reason = up.close_info()
        code = _RESERVED_CLOSE.get(code, code)
        await send({"type": "websocket.close", "code": code, "reason": reason})

    down = asyncio.create_task(qlik_to_browser())
    upward = asyncio.create_task(browser_to_qlik())
    try:
        done, _ = await asyncio.wait({down, upward}, return_when=asyncio.FIRST_COMPLETED)
        if down in done and isinstance(down.exception(), _SessionGone):
            upward.cancel()
            await asyncio.gather(upward, return_exceptions=True)
            await up.close()
            raise _SessionGone
        for task in done:
            exc = task.exception()
            if exc is None or isinstance(exc, WSError):
                continue
            # A browser leaving the page surfaces as an OSError from the server: routine.
            level = logging.DEBUG if isinstance(exc, OSError) else logging.WARNING
            logger.log(level, "WebSocket relay ended with %s", type(exc).__name__)
    finally:
        for task in (down, upward):
            task.cancel()
        await asyncio.gather(down, upward, return_exceptions=True)
        await up.close()
