"""Calling the async core from sync framework code (Flask views, Django signals, WSGI servers).

The core (`QlikSSO`) owns pooled httpx clients, and those belong to the event loop that first
used them. Sync code in a worker thread must therefore *submit* coroutines to that loop, never
start a second loop of its own. `LoopRecorder` (an ASGI wrapper) notes which loop serves a
`QlikSSO`; `run_in_sso_loop` submits a coroutine there from any other thread and waits for it.

Hazard: calling `run_in_sso_loop` *on* the loop thread (from sync code inside an `async def`)
would deadlock; it raises `RuntimeError` instead. Async code awaits the core directly.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core import QlikSSO

__all__ = ["CoroutineChannels", "LoopRecorder", "bind_loop", "run_in_sso_loop", "sso_loop"]

T = TypeVar("T")

_LOOPS: weakref.WeakKeyDictionary[QlikSSO, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()


def bind_loop(sso: QlikSSO, loop: asyncio.AbstractEventLoop) -> None:
    """Record that `sso` is served by `loop` (the last server to run it wins)."""
    _LOOPS[sso] = loop


def sso_loop(sso: QlikSSO) -> asyncio.AbstractEventLoop | None:
    loop = _LOOPS.get(sso)
    if loop is None or loop.is_closed():
        return None
    return loop


def run_in_sso_loop(
    sso: QlikSSO,
    call: Callable[[], Coroutine[Any, Any, T]],
    *,
    timeout: float = 30.0,
) -> T:
    """Run `call()` on the loop that serves `sso` and wait for its result (from a sync thread).

    Raises `RuntimeError` when no loop has served `sso` yet, or when called on that loop's own
    thread (which would deadlock); exceptions of the coroutine propagate unchanged.
    """
    loop = sso_loop(sso)
    if loop is None or not loop.is_running():
        raise RuntimeError(
            "this QlikSSO is not running in a server yet (no request has reached it); "
            "serve the app through its ASGI/WSGI wrapper first"
        )
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if current is loop:
        raise RuntimeError(
            "called from the event loop thread: await the async form (sso.logout) instead"
        )
    future = asyncio.run_coroutine_threadsafe(call(), loop)
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


class LoopRecorder:
    """ASGI wrapper for the app *inside* `QlikSSOMiddleware`: notes the loop serving the core.

    The middleware puts its `QlikSSO` in `scope["qlik_sso"]` for every request it passes to the
    app, so the loop is known before any view of the app can ask for it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sso = scope.get("qlik_sso")
        if isinstance(sso, QlikSSO):
            loop = asyncio.get_running_loop()
            if _LOOPS.get(sso) is not loop:
                bind_loop(sso, loop)
        await self.app(scope, receive, send)


class CoroutineChannels:
    """ASGI wrapper that hands the app `receive` and `send` as coroutine functions.

    a2wsgi passes `receive()` and `send()` to `asyncio.run_coroutine_threadsafe`, which accepts
    coroutines only; granian's channels return other awaitables (futures from Rust), so every
    request body read failed with `TypeError: A coroutine object is required` (README, "ASGI
    servers"). One extra await per message; harmless under any other server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def coroutine_receive() -> Message:
            return await receive()

        async def coroutine_send(message: Message) -> None:
            await send(message)

        await self.app(scope, coroutine_receive, coroutine_send)
