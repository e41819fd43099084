"""`run_relay`'s hand-over when the upstream closes while the browser is sending.

Real sockets on the upstream side (a `websockets` server on loopback); the browser side is the
ASGI `receive`/`send` pair, scripted so that the race Qlik restarts make (the browser's message
goes up just as Qlik closes) happens every time instead of once in a few hundred closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from starlette.types import Message, Receive, Send
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from qlik_sso_middleware.proxy.ws_client import UpstreamSocket
from qlik_sso_middleware.proxy.ws_relay import browser_to_upstream, close_browser, run_relay


@contextlib.asynccontextmanager
async def closing_upstream() -> AsyncIterator[str]:
    """On "bye": one last message, then close 4001 "gone" (as Qlik ends a session)."""

    async def handler(conn: ServerConnection) -> None:
        async for message in conn:
            if message == "bye":
                await conn.send("last")
                await conn.close(4001, "gone")
                return

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def relay(
    upstream: UpstreamSocket,
    downward: Coroutine[Any, Any, None],
    receive: Receive,
    send: Send,
) -> None:
    """`run_relay` as the engine relay calls it, bounded so a regression fails instead of hanging."""
    upward = browser_to_upstream(receive, upstream)
    run = run_relay(
        upstream, downward, upward, log=logging.getLogger("test"), label="relay", send=send
    )
    await asyncio.wait_for(run, 30)


def upward_task() -> asyncio.Task[Any]:
    (task,) = [
        t
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__name__", "") == "browser_to_upstream"
    ]
    return task


async def test_a_browser_message_racing_the_upstreams_close_still_gets_the_close() -> None:
    sent: list[Message] = []
    second = asyncio.Event()
    async with closing_upstream() as url, connect(url) as up:
        upstream: UpstreamSocket = up
        inbox = [{"type": "websocket.receive", "text": "bye"}]

        async def receive() -> Message:
            if inbox:
                return inbox.pop(0)
            await second.wait()
            # Goes up after the upstream closed: the upward side ends with ConnectionClosed.
            return {"type": "websocket.receive", "text": "late"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message.get("text") == "last":
                # Hold the downward side here until the upward one has failed on the closed
                # upstream: the order in which the race goes wrong.
                await up.wait_closed()
                rising = upward_task()
                second.set()
                await asyncio.wait({rising})
                assert isinstance(rising.exception(), ConnectionClosed)

        async def downward() -> None:
            closed: ConnectionClosed | None = None
            try:
                async for data in upstream:
                    await send({"type": "websocket.send", "text": data})
            except ConnectionClosed as exc:
                closed = exc
            await close_browser(upstream, send, closed)

        await relay(upstream, downward(), receive, send)
    assert sent == [
        {"type": "websocket.send", "text": "last"},
        {"type": "websocket.close", "code": 4001, "reason": "gone"},
    ]


async def test_a_browser_that_leaves_first_is_sent_nothing_more() -> None:
    """The control: when the browser side ends first, the downward side is stopped at once and
    nothing is sent to the browser that left (the hand-over above is only for upstream closes)."""
    sent: list[Message] = []
    async with closing_upstream() as url, connect(url) as up:
        upstream: UpstreamSocket = up

        async def receive() -> Message:
            return {"type": "websocket.disconnect", "code": 1001}

        async def send(message: Message) -> None:
            sent.append(message)

        async def downward() -> None:
            async for data in upstream:
                await send({"type": "websocket.send", "text": data})

        await relay(upstream, downward(), receive, send)
        assert up.close_code == 1001
    assert sent == []
