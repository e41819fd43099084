"""HTTP forwarding: stream a browser request to Qlik with the user's session, stream the answer back.

Bodies are streamed both ways in constant memory; a browser that goes away mid-response releases the
upstream connection. What Qlik's answer says about the session (forgotten, reissued) is the
session's to judge (`ForwardingSession.review`); a request it renewed the session for is sent again
once (never more, so a misconfigured Qlik cannot cause a loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.types import Message, Receive, Send

from ..errors import QlikError
from .engine import UpstreamResponse
from .headers import response_headers
from .request import ProxiedRequest
from .route import Route
from .session import ForwardingSession

__all__ = ["forward_http"]

logger = logging.getLogger("qlik_sso_middleware.proxy.http")

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


async def forward_http(
    route: Route,
    session: ForwardingSession,
    req: ProxiedRequest,
    receive: Receive,
    send: Send,
) -> None:
    """Forward `req` to Qlik with `session` and relay the answer (see the module docstring)."""
    await session.open()
    try:
        body = await _body_stream(receive) if _has_body(req) else None
        response = await _send_upstream(route, session, req, body)
    except _ClientGone:
        logger.debug("browser disconnected while sending its request body")
        return
    try:
        if await session.review(response, req):
            await response.aclose()
            response = await _send_upstream(route, session, req, None)
        await _relay_response(route, response, req, receive, send)
    finally:
        await response.aclose()


async def _send_upstream(
    route: Route,
    session: ForwardingSession,
    req: ProxiedRequest,
    body: AsyncIterator[bytes] | None,
) -> UpstreamResponse:
    headers = route.header_policy.upstream_headers(
        req.headers,
        host=req.upstream_host(route.host_header),
        added=[*session.identity_headers(), *req.upstream_extra_headers()],
        session_cookie=session.cookie_header(),
        forwarded_for=req.forwarded_for(route.trusted_proxies),
        forwarded_proto=req.scheme.encode("ascii"),
    )
    url = route.origin + route.base_path + req.sub_path + req.upstream_query().decode("ascii")
    return await route.engine.stream(req.method, url, headers, body)


async def _relay_response(
    route: Route,
    response: UpstreamResponse,
    req: ProxiedRequest,
    receive: Receive,
    send: Send,
) -> None:
    headers = response_headers(response.raw_headers)
    if route.rewrites_locations:
        headers = [
            (k, route.rewrite_location(v, req.host, req.scheme) if k == b"location" else v)
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
        except QlikError as exc:
            raise _UpstreamBroke(exc.message) from exc
        await send({"type": "http.response.body", "body": body})
        return
    await _stream_watching_disconnect(response, receive, send)


async def _raw(response: UpstreamResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.chunks():
            yield chunk
    except QlikError as exc:
        raise _UpstreamBroke(exc.message) from exc


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
            if gone:
                # The cancel was lost inside the engine (pyreqwest 0.15 drops about one in
                # fifteen while a chunk read is pending): stop at the next chunk instead.
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        else:
            await send({"type": "http.response.body", "body": b""})
            return
        logger.debug("browser disconnected mid-response; upstream released")
    except asyncio.CancelledError:
        if not gone:
            raise
        current.uncancel()
        logger.debug("browser disconnected mid-response; upstream released")
    finally:
        watcher.cancel()
        if gone and current.cancelling():
            current.uncancel()
