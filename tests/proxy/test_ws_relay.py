"""`run_relay`'s hand-over when the upstream closes while the browser is sending.

Real sockets on the upstream side (a `websockets` server on loopback); the browser side is the
ASGI `receive`/`send` pair, scripted so that the race Qlik restarts make (the browser's message
goes up just as Qlik closes) happens every time instead of once in a few hundred closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

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


def upward_task() -> asyncio.Task[Any]:
    (task,) = [
        t
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__name__", "") == "browser_to_upstream"
    ]
    return task


async def test_a_browser_message_racing_the_upstreams_close_still_gets_the_close() -> None:
    sent: list[dict[str, Any]] = []
    second = asyncio.Event()
    async with closing_upstream() as url, connect(url) as up:
        upstream: UpstreamSocket = up
        inbox = [{"type": "websocket.receive", "text": "bye"}]

        async def receive() -> dict[str, Any]:
            if inbox:
                return inbox.pop(0)
            await second.wait()
            # Goes up after the upstream closed: the upward side ends with ConnectionClosed.
            return {"type": "websocket.receive", "text": "late"}

        async def send(message: dict[str, Any]) -> None:
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

        await asyncio.wait_for(
            run_relay(
                upstream,
                downward(),
                browser_to_upstream(receive, upstream),
                log=logging.getLogger("test"),
                label="relay",
                send=send,
            ),
            30,
        )
    assert sent == [
        {"type": "websocket.send", "text": "last"},
        {"type": "websocket.close", "code": 4001, "reason": "gone"},
    ]


async def test_a_browser_that_leaves_first_is_sent_nothing_more() -> None:
    """The control: when the browser side ends first, the downward side is stopped at once and
    nothing is sent to the browser that left (the hand-over above is only for upstream closes)."""
    sent: list[dict[str, Any]] = []
    async with closing_upstream() as url, connect(url) as up:
        upstream: UpstreamSocket = up

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.disconnect", "code": 1001}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def downward() -> None:
            async for data in upstream:
                await send({"type": "websocket.send", "text": data})

        await asyncio.wait_for(
            run_relay(
                upstream,
                downward(),
                browser_to_upstream(receive, upstream),
                log=logging.getLogger("test"),
                label="relay",
                send=send,
            ),
            30,
        )
        assert up.close_code == 1001
    assert sent == []
