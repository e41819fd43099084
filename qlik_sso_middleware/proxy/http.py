"""HTTP forwarding: stream a browser request to Qlik with the user's session, stream the answer back.

Bodies are streamed both ways in constant memory; a browser that goes away mid-response releases the
upstream connection; a session Qlik no longer honours is renewed, and idempotent requests are retried
once (never more, so a misconfigured Qlik cannot cause a loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
from starlette.types import Message, Receive, Send

from ..auth._proxy_login import qps_user_inactive, session_cookie_from
from ..errors import QlikTimeout, QlikUnavailable, RequestRefused
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from .engine import UpstreamResponse
from .headers import response_headers
from .request import ProxiedRequest
from .upstream import Upstream

if TYPE_CHECKING:
    from ..core import QlikSSO

__all__ = ["forward_http"]

logger = logging.getLogger("qlik_sso_middleware.proxy.http")

_RETRYABLE = frozenset({"GET", "HEAD", "OPTIONS"})
# Responses this small are sent in one piece; no need to watch for a disconnect meanwhile.
_SMALL = 64 * 1024


class _ClientGone(Exception):
    """The browser disconnected while we were reading its request body."""


class _UpstreamBroke(Exception):
    """Qlik failed after the response had started; the server must abort the connection."""


async def _next_body_chunk(receive: Receive) -> tuple[bytes, bool]:
    """The browser's next non-empty body chunk (or b"" at the end) and whether more follow."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if body or not more:
            return body, more


async def _body_stream(receive: Receive) -> AsyncIterator[bytes] | None:
    """The request body as a stream, or None if it is empty.

    The first chunk is awaited *before* anything goes to Qlik: a browser whose body breaks off (or
    whose framing the server rejects) before its first byte never opens an upstream request. The
    engines differ there otherwise (aiohttp waits for the first chunk, reqwest sends the head at
    once).
    """
    first, more = await _next_body_chunk(receive)
    if not first and not more:
        return None

    async def stream() -> AsyncIterator[bytes]:
        chunk, rest = first, more
        while True:
            if chunk:
                yield chunk
            if not rest:
                return
            chunk, rest = await _next_body_chunk(receive)

    return stream()


def _has_body(req: ProxiedRequest) -> bool:
    length = req.header(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return req.header(b"transfer-encoding") is not None


def _session_gone(response: UpstreamResponse) -> bool:
    """Does this answer say Qlik did not know the session we presented?"""
    if response.status_code in (301, 302, 303, 307, 308):
        location = response.header(b"location") or b""
        # Qlik's redirect to its authentication module always carries targetId.
        return b"targetid=" in location.lower()
    return False


async def forward_http(
    sso: QlikSSO,
    upstream: Upstream,
    req: ProxiedRequest,
    identity: QlikIdentity,
    receive: Receive,
    send: Send,
) -> None:
    session = await sso.session_for(identity, upstream, req.host)
    try:
        body = await _body_stream(receive) if _has_body(req) else None
        response = await _send_upstream(sso, upstream, req, identity, session, body)
    except _ClientGone:
        logger.debug("browser disconnected while sending its request body")
        return
    method = req.method
    try:
        if _session_gone(response) or await _qps_user_inactive(response, req):
            stale = session
            if method not in _RETRYABLE:
                await response.aclose()
                await sso.renew(identity, upstream, req.host, stale)
                raise RequestRefused(
                    "The Qlik session had expired and was renewed; please retry", status_code=503
                )
            await response.aclose()
            session = await sso.renew(identity, upstream, req.host, stale)
            response = await _send_upstream(sso, upstream, req, identity, session, None)
        elif response.status_code == 403 and method in _RETRYABLE:
            # After a Qlik restart, every request still carrying the forgotten cookie makes Qlik
            # log the user in again by header; past five it answers "too many sessions". If a
            # concurrent request has meanwhile adopted one of those new sessions, use it (once).
            current = await sso.sessions.get(sso.session_key(upstream, identity))
            if current is not None and current.cookie_value != session.cookie_value:
                await response.aclose()
                session = current
                response = await _send_upstream(sso, upstream, req, identity, session, None)
        set_cookies = response.header_values(b"set-cookie")
        renewed = (
            session_cookie_from([c.decode("latin-1") for c in set_cookies], session.cookie_name)
            if set_cookies
            else None
        )
        if renewed is not None and renewed != session.cookie_value:
            # Qlik re-authenticated the user by header and issued a new session: keep one.
            await sso.adopt(identity, upstream, session, renewed, req.host)
        await _relay_response(upstream, response, req, receive, send)
    finally:
        await response.aclose()


async def _send_upstream(
    sso: QlikSSO,
    upstream: Upstream,
    req: ProxiedRequest,
    identity: QlikIdentity,
    session: QlikSession,
    body: AsyncIterator[bytes] | None,
) -> UpstreamResponse:
    headers = sso.header_policy.upstream_headers(
        req.headers,
        host=req.upstream_host(upstream),
        added=upstream.target.auth.upstream_headers(identity),
        session_cookie=session.cookie_header().encode("latin-1"),
        forwarded_for=req.forwarded_for(sso.trusted_proxies),
        forwarded_proto=req.scheme.encode("ascii"),
    )
    url = upstream.target.url + (
        upstream.upstream_raw_path(req.sub_path) + req.upstream_query()
    ).decode("ascii")
    try:
        # The engine itself, not `client.send`: see `Upstream._new_client`.
        return await upstream.engine.stream(req.method, url, headers, body, upstream.timeouts)
    except _ClientGone:
        raise
    except httpx.TimeoutException as exc:
        raise QlikTimeout(f"Qlik did not answer {req.method} {req.sub_path} in time") from exc
    except httpx.TransportError as exc:
        raise QlikUnavailable(
            f"Qlik unreachable at {upstream.target.url} ({type(exc).__name__})"
        ) from exc


async def _qps_user_inactive(response: UpstreamResponse, req: ProxiedRequest) -> bool:
    """`qps/user` answering `session: inactive` means the session we presented is gone."""
    if req.method != "GET" or req.sub_path.rstrip("/").lower() != "qps/user":
        return False
    if response.status_code != 200:
        return False
    return qps_user_inactive(await response.read())


async def _relay_response(
    upstream: Upstream,
    response: UpstreamResponse,
    req: ProxiedRequest,
    receive: Receive,
    send: Send,
) -> None:
    headers = response_headers(response.raw_headers)
    if upstream.rewrites_locations:
        headers = [
            (k, upstream.rewrite_location(v, req.host, req.scheme) if k == b"location" else v)
            for k, v in headers
        ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    if req.method == "HEAD":
        await send({"type": "http.response.body", "body": b""})
        return
    if response.body is not None:  # read already (qps/user check)
        await send({"type": "http.response.body", "body": response.body})
        return
    length = response.header(b"content-length")
    if length is not None and length.isdigit() and int(length) <= _SMALL:
        try:
            body = await response.read()
        except httpx.HTTPError as exc:
            raise _UpstreamBroke(f"Qlik broke off the response ({type(exc).__name__})") from exc
        await send({"type": "http.response.body", "body": body})
        return
    await _stream_watching_disconnect(response, receive, send)


async def _raw(response: UpstreamResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.chunks():
            yield chunk
    except httpx.HTTPError as exc:
        raise _UpstreamBroke(f"Qlik broke off the response ({type(exc).__name__})") from exc


async def _stream_watching_disconnect(
    response: UpstreamResponse, receive: Receive, send: Send
) -> None:
    """Stream the body; if the browser disconnects, stop at once and release the upstream."""
    current = asyncio.current_task()
    assert current is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
                current.cancel()
                return

    watcher = asyncio.create_task(watch())
    try:
        async for chunk in _raw(response):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except asyncio.CancelledError:
        if not gone:
            raise
        current.uncancel()
        logger.debug("browser disconnected mid-response; upstream released")
    finally:
        watcher.cancel()
        if gone and current.cancelling():
            current.uncancel()
