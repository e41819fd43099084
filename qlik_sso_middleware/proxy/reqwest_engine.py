"""`ReqwestEngine`: the proxy's default HTTP engine, pyreqwest (Rust's reqwest/hyper) under asyncio.

Why: measured in `benchmarks/` (see its README), a bare pass-through costs about half the CPU per
request on pyreqwest that it costs on aiohttp, whose per-request `ClientRequest` set-up dominated the
proxy's profile. The HTTP parsing, pooling and socket work run in Rust; Python sees one await per
request and one per body chunk.

Contract (the same as `AiohttpTransport.stream`'s, where pyreqwest allows):
- the path and query go out as checked: `PathPolicy` refuses dot segments, encoded separators and
  backslashes, so the URL parser (WHATWG rules) has nothing to normalise; characters a browser must
  percent-encode in a query anyway (`'`, `"`, `<`, `>`) are sent encoded, which means the same;
- headers are sent as given, with no cookie store, no decompression (bodies and `Content-Encoding`
  are relayed raw), no redirects followed; values that are not UTF-8 are dropped (pyreqwest takes
  `str`); reqwest adds `Accept: */*` and a `User-Agent` only when the browser sent none; a body
  keeps its `Content-Length`, else goes chunked, whatever the method (GET included);
- response header values that are not visible ASCII (RFC 9110's obs-text: Latin-1 or UTF-8 bytes)
  are dropped, because pyreqwest hands header values over only as ASCII `str`; a warning names the
  header once per process. Qlik's own headers are ASCII; if a deployment needs such a header (a
  raw UTF-8 `Content-Disposition` filename, say), set `QlikTarget(http_engine="aiohttp")`, which
  relays header bytes untouched. Everything else arrives as Qlik sent it (names lower-cased by hyper);
- `connect` applies per connection attempt and `pool` bounds the wait for a free slot (pyreqwest
  counts both); `read` is how long Qlik may stay silent while the proxy waits for its answer (the
  head once the upload is sent, then each next piece of the body) and `write` how long it may take
  to accept the upload's next piece, both counted by `reqwest_waits.Silence`, never while the
  browser is slow to send or to read; timeouts become `QlikTimeout`, pyreqwest's errors
  `QlikTimeout` / `QlikUnavailable`;
- closing a response before its end closes its connection instead of returning it to the pool;
- the response head is handed over as soon as it arrives: pyreqwest would otherwise read up to
  64 KiB of body first (`streamed_read_buffer_limit`), holding back the head and first bytes of a
  slow answer (server-sent events, a long export) until that much arrived or the body ended;
- a cancellation is never lost (`reqwest_waits.settled`).

TLS: `verify=True` uses the platform's roots, a CA file path adds that CA, `False` disables checks
(logged loudly by the middleware). An `ssl.SSLContext` cannot be handed to Rust: such targets use the
aiohttp engine (`Upstream` decides).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

from pyreqwest import exceptions as rq
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.response import Response

from ..errors import QlikError
from .engine import HeaderLookup, Timeouts, str_headers, upstream_failure
from .reqwest_waits import Silence

__all__ = ["ReqwestEngine", "ReqwestResponse"]

logger = logging.getLogger("qlik_sso_middleware.proxy.reqwest_engine")


_TIMEOUTS = (
    rq.ConnectTimeoutError,
    rq.PoolTimeoutError,
    rq.WriteTimeoutError,
    rq.ReadTimeoutError,
    rq.RequestTimeoutError,
)


def _translate(exc: rq.PyreqwestError, url: str) -> QlikError:
    return upstream_failure(url, exc, timed_out=isinstance(exc, _TIMEOUTS))


_WARNED: set[str] = set()  # header names already warned about (bounded)


def _raw_headers(response: Response) -> tuple[tuple[bytes, bytes], ...]:
    headers = response.headers
    try:
        return tuple((k.encode("ascii"), v.encode("utf-8")) for k, v in headers.items())
    except ValueError:
        pass  # a value is not ASCII: go name by name to drop only that one
    out: list[tuple[bytes, bytes]] = []
    seen: set[str] = set()
    for name in headers:
        if name in seen:
            continue  # iterating repeats a name per value; `getall` already gave them all
        seen.add(name)
        try:
            values = headers.getall(name)
        except ValueError:
            if name not in _WARNED and len(_WARNED) < 256:
                _WARNED.add(name)
                logger.warning(
                    "dropped Qlik's %r response header: its value is not ASCII, which the reqwest "
                    "engine cannot relay (QlikTarget(http_engine='aiohttp') relays it as is)",
                    name,
                )
            continue
        key = name.encode("ascii")
        out.extend((key, value.encode("utf-8")) for value in values)
    return tuple(out)


async def _paced(
    body: AsyncIterator[bytes], head: Silence, timeouts: Timeouts
) -> AsyncIterator[bytes]:
    """The upload as pyreqwest pulls it, timing Qlik only: not while the browser sends (its pace
    is not Qlik's), `write` while pyreqwest holds a piece Qlik has not taken, `read` once all is
    sent; until Qlik's answer head arrives (it may come before the whole upload was read)."""
    async for chunk in body:
        if head.uploading:
            head.start(timeouts.write)
        yield chunk
        if head.uploading:
            head.stop()
    if head.uploading:
        head.start(timeouts.read)


class ReqwestResponse(HeaderLookup):
    """Qlik's answer on the reqwest engine (see `engine.UpstreamResponse`)."""

    __slots__ = (
        "_context", "_done", "_read_timeout", "_response", "_silence", "_url", "status_code",
    )  # fmt: skip

    def __init__(
        self,
        context: AbstractAsyncContextManager[Response],
        response: Response,
        url: str,
        read_timeout: float,
        silence: Silence,
    ) -> None:
        super().__init__(_raw_headers(response))
        self._context = context
        self._url = url
        self._response = response
        self._read_timeout = read_timeout
        self._silence = silence
        self._done = False
        self.status_code: int = response.status

    async def read(self) -> bytes:
        if self._body is None:
            self._silence.start(self._read_timeout, asyncio.current_task())
            try:
                self._body = bytes(await self._silence.guard(self._response.bytes()))
            except rq.PyreqwestError as exc:
                raise _translate(exc, self._url) from exc
            except TimeoutError as exc:
                raise upstream_failure(self._url, exc, timed_out=True) from exc
            finally:
                self._silence.stop()
        return self._body

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self._response.body_reader
        silence = self._silence
        task = asyncio.current_task()
        try:
            while True:
                # Qlik's silence only: between pieces the caller may take its time.
                silence.start(self._read_timeout, task)
                try:
                    chunk = await silence.guard(reader.read_chunk())
                finally:
                    silence.stop()
                if chunk is None:
                    return
                if chunk:
                    yield bytes(chunk)  # ASGI servers want `bytes`; pyreqwest hands its own type
        except rq.PyreqwestError as exc:
            raise _translate(exc, self._url) from exc
        except TimeoutError as exc:
            raise upstream_failure(self._url, exc, timed_out=True) from exc

    async def aclose(self) -> None:
        self._silence.close()
        if not self._done:
            self._done = True
            # Leaving the context drops the response: a fully read one goes back to the pool,
            # a half-read one takes its connection with it.
            await self._context.__aexit__(None, None, None)


class ReqwestEngine:
    """Pooled HTTP/1.1 to one Qlik proxy through one pyreqwest `Client` (see the module docstring).

    `max_connections` bounds requests in flight (more wait up to `timeouts.pool`) and idle pooled
    connections. The client is created on first use, inside the running event loop.
    """

    def __init__(
        self,
        *,
        timeouts: Timeouts,
        verify: bool | str = True,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._timeouts = timeouts
        self._verify = verify
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._client: Client | None = None
        self._closed = False

    def _new_client(self) -> Client:
        t = self._timeouts
        builder = (
            ClientBuilder()
            .http1_only()
            .follow_redirects(False)
            .gzip(False)
            .brotli(False)
            .deflate(False)
            .zstd(False)
            .max_connections(self._max_connections)
            .pool_max_idle_per_host(self._max_connections)
            .pool_idle_timeout(timedelta(seconds=self._keepalive_expiry))
            .connect_timeout(timedelta(seconds=t.connect))
            .pool_timeout(timedelta(seconds=t.pool))
        )
        if isinstance(self._verify, str):
            with open(self._verify, "rb") as fh:
                builder = builder.add_root_certificate_pem(fh.read())
        elif self._verify is False:
            builder = builder.danger_accept_invalid_certs(True)
        return builder.build()

    async def stream(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
    ) -> ReqwestResponse:
        """Send one proxied request (see `engine.ProxyEngine.stream`)."""
        if self._closed:
            raise RuntimeError("the engine is closed")
        client = self._client
        if client is None:
            client = self._client = self._new_client()
        pairs = str_headers(headers)
        if body is not None and not any(name.lower() == "content-length" for name, _ in pairs):
            # hyper chunks a body of unknown length by itself except on GET/HEAD/CONNECT, where
            # it silently sends none: say it is chunked (it then does, once).
            pairs.append(("transfer-encoding", "chunked"))
        builder: Any = client.request(method, url).headers(pairs).streamed_read_buffer_limit(0)
        silence = Silence()  # one timer for the whole exchange: head, then body
        if body is None:
            silence.start(self._timeouts.read)
        else:
            silence.uploading = True
            builder = builder.body_stream(_paced(body, silence, self._timeouts))
        context: AbstractAsyncContextManager[Response] = builder.build_streamed()
        try:
            response = await silence.guard(
                context.__aenter__(), lambda _: context.__aexit__(None, None, None)
            )
        except rq.PyreqwestError as exc:
            silence.close()
            raise _translate(exc, url) from exc
        except TimeoutError as exc:
            silence.close()
            raise upstream_failure(url, exc, timed_out=True) from exc
        except BaseException:
            silence.close()
            raise
        silence.uploading = False
        silence.stop()
        return ReqwestResponse(context, response, url, self._timeouts.read, silence)

    async def aclose(self) -> None:
        self._closed = True
        if self._client is not None:
            await self._client.close()
            self._client = None
