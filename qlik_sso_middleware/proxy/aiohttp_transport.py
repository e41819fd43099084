"""aiohttp under the proxy: `AiohttpTransport` (an httpx transport, for logins and Qlik API calls) and
`AiohttpEngine` (the `ProxyEngine` for proxied requests), sharing one pool per target.

Why not httpx's default transport (httpcore): measured in `benchmarks/` (see its README), httpcore
costs 4-15x aiohttp's CPU per request, and its pool walks (and polls) every pooled connection on
each request (encode/httpx#3215), so it gets slower as concurrency rises. The proxy keeps httpx as
its client API (auth strategies call `client.get(...)`; the hot path builds `httpx.Request`s); only
the engine underneath changes.

Why not the `httpx-aiohttp` package: it hands aiohttp `str(request.url)`, which yarl re-quotes
(`%7E` → `~`, `%2F` in a query → `/`), so Qlik would no longer receive the path and query we checked
byte for byte; it keeps aiohttp's default cookie jar and automatic headers unless the caller knows to
switch them off; and its per-request overhead roughly doubles aiohttp's own.

Contract (the parts of httpx's transport contract the proxy relies on):
- the URL is sent exactly as given (`encoded=True`), the headers exactly as given: no cookie jar
  (a shared jar would mix users' Qlik sessions), no automatic `User-Agent`/`Accept`/`Accept-Encoding`,
  no decompression (bodies are relayed raw, with their `Content-Encoding`), no redirects followed;
- a streamed request body (an async iterator) is sent as it arrives; a `Content-Length` given in the
  headers is kept, else the body is chunked;
- aiohttp's errors become httpx's (`httpx.ConnectError`, `httpx.ReadTimeout`, ...) on the transport,
  `QlikTimeout` / `QlikUnavailable` on the engine (each translated once, where it leaves aiohttp);
- closing a response before its end closes its connection instead of returning it to the pool.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
import httpx2 as httpx
from multidict import CIMultiDict
from yarl import URL

from ..errors import QlikError
from .engine import HeaderLookup, Timeouts, str_headers, upstream_failure

__all__ = ["AiohttpEngine", "AiohttpTransport", "StreamedResponse"]

_FAILURES = (aiohttp.ClientError, TimeoutError, OSError)

# Added by aiohttp unless told otherwise; the proxy forwards the browser's own or none.
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding")


def _engine_failure(exc: BaseException, url: str) -> QlikError:
    timed_out = isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ServerTimeoutError)
    return upstream_failure(url, exc, timed_out=timed_out or isinstance(exc, TimeoutError))


def _translate(exc: BaseException, *, request: httpx.Request | None) -> httpx.TransportError:
    """aiohttp's (and asyncio's) error for a request → the httpx error callers catch."""
    message = f"{type(exc).__name__}"
    error: httpx.TransportError
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        error = httpx.ConnectTimeout(message, request=request)
    elif isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        error = httpx.ReadTimeout(message, request=request)
    elif isinstance(exc, aiohttp.ClientConnectorError):
        error = httpx.ConnectError(message, request=request)
    elif isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        error = httpx.RemoteProtocolError(message, request=request)
    else:
        error = httpx.ReadError(message, request=request)
    return error


class StreamedResponse(HeaderLookup):
    """An upstream answer for the proxy's hot path: status, raw headers, body read on demand.

    Header names and values are the bytes Qlik sent. Errors while reading the body are httpx's
    (`httpx.ReadError`, ...) for the transport's `request`, the project's for the engine's `url`.
    """

    __slots__ = ("_request", "_response", "_url", "status_code")

    def __init__(
        self, response: aiohttp.ClientResponse, request: httpx.Request | None, url: str = ""
    ) -> None:
        super().__init__(response.raw_headers)
        self._response = response
        self._request = request
        self._url = url
        self.status_code: int = response.status

    def _failure(self, exc: BaseException) -> Exception:
        if self._request is not None:
            return _translate(exc, request=self._request)
        return _engine_failure(exc, self._url)

    async def read(self) -> bytes:
        """The whole body (for small ones: one await, no per-chunk iteration)."""
        if self._body is None:
            try:
                self._body = await self._response.read()
            except _FAILURES as exc:
                raise self._failure(exc) from exc
        return self._body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as the socket delivered it; each chunk is yielded once."""
        content = self._response.content
        try:
            while True:
                # `readchunk`, not `readany`: the buffered pieces one by one, where `readany` would
                # join (copy) everything buffered into one new bytes object first.
                chunk, end_of_http_chunk = await content.readchunk()
                if chunk:
                    yield chunk
                elif not end_of_http_chunk or content.at_eof():
                    # (b"", False) is the end of the body. A bodiless answer (204, 304) reads from
                    # aiohttp's one shared empty stream, which says (b"", True) once any response
                    # has read it: without `at_eof` that loops for ever (Qlik's qps/csrftoken is
                    # a 204).
                    return
        except _FAILURES as exc:
            raise self._failure(exc) from exc

    async def aclose(self) -> None:
        response = self._response
        if response.content.is_eof():
            response.release()  # back to the pool
        else:
            response.close()  # a half-read connection can never be reused


class _ResponseStream(httpx.AsyncByteStream):
    """A `StreamedResponse` body as httpx's stream contract."""

    __slots__ = ("_streamed",)

    def __init__(self, streamed: StreamedResponse) -> None:
        self._streamed = streamed

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._streamed.chunks()

    async def aclose(self) -> None:
        await self._streamed.aclose()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Pooled HTTP/1.1 to one or more hosts through one `aiohttp.ClientSession`.

    `ssl_context=None` uses aiohttp's default verification for https URLs. `max_connections` bounds
    the pool (requests beyond it wait up to the request's `pool` timeout). `keepalive_expiry` is how
    long an idle connection is kept. The session is created on first use, inside the running loop.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    def session(self) -> aiohttp.ClientSession:
        """The pooled aiohttp session (created on first use, in the running loop)."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        session = self._session
        if session is None:
            session = self._session = self._new_session()
        return session

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry,
            ssl=self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_NO_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,
            requote_redirect_url=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        given = request.extensions.get("timeout") or {}
        return self._timeout_for(given.get("connect"), given.get("read"), given.get("pool"))

    def _timeout_for(
        self, connect: float | None, read: float | None, pool: float | None
    ) -> aiohttp.ClientTimeout:
        # httpx's four timeouts → aiohttp's: waiting for a pooled connection and connecting both
        # count against `connect` (aiohttp has one budget for both), `read` is per socket read.
        key = (connect, read, pool)
        timeout = self._timeouts.get(key)
        if timeout is None:
            total_connect = None if connect is None or pool is None else connect + pool
            timeout = aiohttp.ClientTimeout(
                total=None, connect=total_connect, sock_connect=connect, sock_read=read
            )
            if len(self._timeouts) < 64:
                self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self.session()
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in request.headers.raw:
            if name.lower() != b"transfer-encoding":  # aiohttp frames the body itself
                headers.add(name.decode("latin-1"), value.decode("latin-1"))
        stream = request.stream
        data: Any = None
        if isinstance(stream, httpx.AsyncByteStream) and not isinstance(stream, httpx.ByteStream):
            data = stream
        elif isinstance(stream, httpx.ByteStream):
            body = b"".join(stream)
            data = body or None
        url = URL(str(request.url), encoded=True)
        try:
            response = await session.request(
                request.method,
                url,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=self._timeout(request),
                compress=None,
            )
        except _FAILURES as exc:
            raise _translate(exc, request=request) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(StreamedResponse(response, request)),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None


class AiohttpEngine:
    """The `ProxyEngine` on aiohttp, over a transport's pool (see the module docstring).

    Used when the target's `verify` is an `ssl.SSLContext` (which only aiohttp takes) or when
    `QlikTarget(http_engine="aiohttp")` asks for it. Closing it closes nothing: the transport owns
    the pool.
    """

    def __init__(self, transport: AiohttpTransport, timeouts: Timeouts) -> None:
        self._transport = transport
        # httpx's four timeouts → aiohttp's, once: waiting for a pooled connection and connecting
        # both count against `connect` (aiohttp has one budget for both), `read` is per socket read.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.connect + timeouts.pool,
            sock_connect=timeouts.connect,
            sock_read=timeouts.read,
        )

    async def stream(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
    ) -> StreamedResponse:
        """Send one proxied request without building httpx models (the hot path).

        `url` is already percent-encoded and is sent byte for byte. Header values that are not
        UTF-8 are dropped: aiohttp writes headers as UTF-8, so they could not be sent unchanged.
        """
        session = self._transport.session()
        try:
            response = await session.request(
                method,
                URL(url, encoded=True),
                headers=str_headers(headers),
                data=body,
                allow_redirects=False,
                timeout=self._timeout,
                compress=None,
            )
        except _FAILURES as exc:
            raise _engine_failure(exc, url) from exc
        return StreamedResponse(response, None, url)

    async def aclose(self) -> None:
        return None
