"""One open engine WebSocket of a soak browser: the page's JSON-RPC calls, and a reader that hands
every frame's user tag to the checker and every answer to its call.

The calls are what Qlik's client makes when a sheet loads: open the app, its layout, an object,
its layout and data, who am I; then a layout refresh now and then while the user looks. A close
from the server is reported once (by the reader) and ends the session at once, as a page's
`onclose` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from qlik_sso_middleware.testing import DEMO_APPS, USER_TAG_FIELD

from .instance import DIRECTORY

if TYPE_CHECKING:
    from .browser import Browser

__all__ = ["APP", "EngineSession", "Failed"]

APP = DEMO_APPS[0]
OBJECT = APP.objects[0].id


class Failed(Exception):
    """An answer the checker has already been told about was not a success."""


class EngineSession:
    """One open engine socket: a reader that checks every frame, and the page's RPC calls."""

    def __init__(self, browser: Browser, ws: ClientConnection, instance: int) -> None:
        self.browser = browser
        self.ws = ws
        self.instance = instance
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._closing = False
        self._gone = asyncio.Event()  # the server closed the socket
        self._reader: asyncio.Task[None] | None = None

    async def run(self) -> None:
        reader = self._reader = asyncio.create_task(self._read())
        try:
            await self._calls()
        finally:
            self._closing = True
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _calls(self) -> None:
        b = self.browser
        await self._call("OpenDoc", -1, APP.id)
        await self._call("GetAppLayout", 1)
        handle = (await self._call("GetObject", 1, OBJECT))["qReturn"]["qHandle"]
        await self._call("GetLayout", handle)
        page = [{"qTop": 0, "qLeft": 0, "qWidth": 2, "qHeight": 10}]
        await self._call("GetHyperCubeData", handle, "/qHyperCubeDef", page)
        me = (await self._call("GetAuthenticatedUser", -1))["qReturn"]
        if me != f"UserDirectory={DIRECTORY}; UserId={b.user_id}":
            b.bad_body("engine", f"the engine says {me!r}")
        deadline = b.clock() + b.rng.uniform(*b.pace.view)
        while (left := deadline - b.clock()) > 0:
            # A page learns of a closed socket at once (onclose), and reloads.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), min(left, b.rng.uniform(*b.pace.refresh)))
            if self._gone.is_set():
                raise Failed
            await self._call("GetLayout", handle)

    async def _call(self, method: str, handle: int, *params: Any) -> dict[str, Any]:
        b = self.browser
        self._next_id += 1
        request_id = self._next_id
        answer = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        started = b.clock()
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        message |= {"handle": handle, "params": list(params)}
        try:
            await self.ws.send(json.dumps(message))
            async with asyncio.timeout(b.pace.hung):
                result = await answer
        except TimeoutError:
            b.checker.answer(
                b.user, "rpc", instance=self.instance, started=started, ended=b.clock(),
                status=None, error="hung", detail=self._state(method, request_id),
            )  # fmt: skip
            raise Failed from None
        except ConnectionClosed:
            raise Failed from None  # the reader told the checker about the close
        finally:
            del self._waiting[request_id]
            if answer.done() and not answer.cancelled():
                answer.exception()  # retrieved: a close may have come while the send failed
        if "result" not in result:
            b.bad_body("rpc", f"{method} answered {result.get('error')}")
        b.checker.answer(
            b.user, "rpc", instance=self.instance, started=started, ended=b.clock(), status=200
        )
        value: dict[str, Any] = result["result"]
        return value

    def _state(self, method: str, request_id: int) -> str:
        """Where a hung call stood: the socket's state, the reader's, what else was waiting."""
        reader = self._reader
        if reader is None or not reader.done():
            read = "reader alive"
        elif reader.cancelled():
            read = "reader cancelled"
        else:
            read = f"reader ended with {reader.exception()!r}"
        others = sorted(i for i in self._waiting if i != request_id)
        return (
            f"({method} id {request_id} on instance {self.instance}: socket "
            f"{self.ws.state.name}, close {self.ws.close_code}, {read}, also waiting {others})"
        )

    async def _read(self) -> None:
        """Every frame to the checker; answers to their callers; a close the server made too."""
        b = self.browser
        while True:
            try:
                raw = await self.ws.recv()
            except ConnectionClosed as closed:
                self._gone.set()
                if not self._closing:
                    code = closed.rcvd.code if closed.rcvd is not None else None
                    b.checker.closed(
                        b.user, code, instance=self.instance, at=b.clock(), detail=repr(closed)
                    )
                for waiting in self._waiting.values():
                    if not waiting.done():
                        waiting.set_exception(closed)
                return
            message = json.loads(raw)
            b.checker.frame(b.user, message.get(USER_TAG_FIELD), b.clock())
            waiting = self._waiting.get(message.get("id", -1))
            if waiting is not None and not waiting.done():
                waiting.set_result(message)
