"""Waiting on pyreqwest as the proxy means it: Qlik's silence timed, cancellations never lost.

`Silence` times how long Qlik keeps the proxy waiting: for the answer's head once the upload is
sent (`write` per upload piece Qlik has not taken yet), then for each next piece of the body.
Only those waits count. pyreqwest's own read timer also ran while the browser was still
uploading, and while it was slow to read the answer (the proxy then stops reading too), so it
cut off uploads and downloads longer than the timeout that Qlik served promptly; tower-http#574
describes the same body-timer semantics. One timer per response, re-armed lazily when it fires
early (a wait started after it was set), not one per read: a per-read `asyncio.timeout` cost
about 20 µs of CPU per proxied request.

`Silence.guard` also re-raises a cancellation pyreqwest dropped: its awaitables (pyo3 coroutines) return a
result that is ready when the CancelledError is thrown in (about once in a thousand cancels of a
streaming read), so a caller that cancels to stop (a timeout, a browser gone, a shutdown) would
go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Silence"]

T = TypeVar("T")


class Silence:
    """How long Qlik has kept a task waiting; past the limit, the task is cancelled and `guard`
    turns that cancellation into `TimeoutError` (as `asyncio.timeout` does)."""

    __slots__ = (
        "_cancelling", "_closed", "_fired", "_handle", "_limit", "_loop", "_since", "_task",
        "uploading",
    )  # fmt: skip

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()  # the task that waits (and is cancelled)
        self._since: float | None = None  # when the current wait began (None: not waiting)
        self._limit = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._fired = False
        self._closed = False
        self._cancelling = 0
        #: An upload is still pulled while the head is awaited: `write` / `read` waits are its.
        self.uploading = False

    def start(self, limit: float, task: asyncio.Task[object] | None = None) -> None:
        """A wait on Qlik of at most `limit` seconds begins, for `task` (the one that will
        `guard` it; by default the one that created this, or last started it)."""
        if self._closed:
            return
        if task is not None:
            self._task = task
        self._since = self._loop.time()
        self._limit = limit
        if self._handle is None:
            self._handle = self._loop.call_at(self._since + limit, self._check)

    def stop(self) -> None:
        """The wait is over (Qlik answered, or the time is the browser's again)."""
        self._since = None

    def close(self) -> None:
        """No more waits: drop the timer (it would keep the response alive until it fired)."""
        self._closed = True
        self._since = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        if self._since is None or self._task is None:
            return  # not waiting now; the next wait arms the timer again
        due = self._since + self._limit
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self._fired = True
        self._cancelling = self._task.cancelling()
        self._task.cancel()

    async def guard(
        self, awaitable: Awaitable[T], discard: Callable[[T], Awaitable[object]] | None = None
    ) -> T:
        """Await one pyreqwest call. TimeoutError if the silence ran out meanwhile; the task's
        cancellation if it was cancelled meanwhile even when pyreqwest returned a result anyway
        (which is then `discard`ed)."""
        task = self._task
        requested = task.cancelling() if task is not None else 0
        try:
            result = await awaitable
            if task is None or task.cancelling() <= requested:
                return result
            if discard is not None:
                await discard(result)
            raise asyncio.CancelledError
        except asyncio.CancelledError:
            if self._fired and task is not None:
                self._fired = False
                if task.uncancel() <= self._cancelling:
                    raise TimeoutError from None
            raise
