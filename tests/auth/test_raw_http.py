"""The bounded body read and the cause walk shared by the QPS and Qlik Cloud clients, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from qlik_sso_middleware.auth._raw_http import exception_chain, read_capped

from ..servers import serve

CHUNK = 64 * 1024


async def stream_bytes(request: Request) -> StreamingResponse:
    """`n` bytes in CHUNK pieces, so the reader sees the body arrive in several reads."""
    total = int(request.path_params["n"])

    async def body() -> AsyncIterator[bytes]:
        left = total
        while left > 0:
            piece = b"x" * min(CHUNK, left)
            left -= len(piece)
            yield piece

    return StreamingResponse(body(), media_type="application/octet-stream")


async def fetch_capped(base: str, n: int, limit: int) -> bytes | None:
    transport = httpx.AsyncHTTPTransport()
    try:
        response = await transport.handle_async_request(httpx.Request("GET", f"{base}/bytes/{n}"))
        try:
            return await read_capped(response, limit)
        finally:
            await response.aclose()
    finally:
        await transport.aclose()


@pytest.fixture
async def base() -> AsyncIterator[str]:
    async with serve(Starlette(routes=[Route("/bytes/{n:int}", stream_bytes)])) as url:
        yield url


@pytest.mark.parametrize("n", [0, 1, CHUNK, 3 * CHUNK + 7])
async def test_body_at_or_under_the_limit_is_returned_whole(base: str, n: int) -> None:
    assert await fetch_capped(base, n, limit=3 * CHUNK + 7) == b"x" * n


async def test_one_byte_over_the_limit_gives_none(base: str) -> None:
    assert await fetch_capped(base, 3 * CHUNK + 8, limit=3 * CHUNK + 7) is None


class CountingStream(httpx.AsyncByteStream):
    """An endless body that counts the chunks pulled from it."""

    def __init__(self) -> None:
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.pulled += 1
            yield b"x" * CHUNK


async def test_an_endless_answer_is_read_only_to_just_past_the_limit() -> None:
    # A hostile or broken server streaming without end: nothing past the chunk that crosses the
    # limit is pulled, so the memory held is bounded by the limit plus one chunk.
    stream = CountingStream()
    response = httpx.Response(200, stream=stream)
    assert await read_capped(response, 3 * CHUNK) is None
    assert stream.pulled == 4


def test_exception_chain_follows_causes_and_contexts_and_stops_on_a_loop() -> None:
    root = OSError("refused")
    middle = ConnectionError("connect failed")
    middle.__context__ = root
    top = RuntimeError("transport error")
    top.__cause__ = middle
    assert exception_chain(top) == [top, middle, root]

    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert exception_chain(a) == [a, b]
