"""`RequestPacer`: a queue in front of one Qlik Cloud rate-limit tier, so 429s never come in bursts.

Qlik Cloud limits each tier per principal (Tier 2, where `/oauth/token`, `/login/jwt-session` and
`POST /api/v1/users` sit: 100 a minute) and answers an excess with 429 and `Retry-After`.

- Callers are released first come, first served, at most `max_requests` in any `per_seconds`
  window, so this process alone never exceeds the limit. A call holds its slot from release until
  `per_seconds` after its answer came back: the tenant counted it at some moment in between, so
  network delays cannot squeeze two windows' worth of calls into one of the tenant's.
- A 429 (the quota is shared with other processes, or the limit changed) pauses the whole queue
  until `Retry-After` has passed, then sends one request at a time until one succeeds: at most the
  calls already in flight meet the 429, never the queue behind them.
- Nobody waits longer than `max_wait`: a caller whose turn would come later gets
  `CloudRateLimited` (a clean 503 with the remaining wait) at once, without sleeping.

`clock` and `sleep` are injectable, so tests drive time instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import CloudRateLimited
from .settings import RateLimit

__all__ = ["RequestPacer"]

T = TypeVar("T")
#: Longest pause a 429's Retry-After may impose (a broken header must not park the queue).
MAX_RETRY_AFTER = 600.0


class RequestPacer:
    """Paces the calls of one tier for one principal (an OAuth client)."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        name: str = "Qlik Cloud",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self.name = name
        self._clock = clock
        self._sleep = sleep
        # One [time] per call in the window: math.inf while it is on the wire, then its end.
        self._slots: list[list[float]] = []
        self._progress = asyncio.Event()  # set (and replaced) whenever a call ends
        self._gate = asyncio.Lock()  # FIFO: waiters get the gate in arrival order
        self._paused_until = 0.0
        self._probing = False
        #: 429 answers met so far (for metrics and tests)
        self.rate_limited = 0

    async def send(
        self, call: Callable[[], Awaitable[T]], retry_after: Callable[[T], float | None]
    ) -> T:
        """Run `call` in its turn; `retry_after(result)` is None unless the answer was a 429.

        A 429 is retried in a later turn while the caller's `max_wait` allows; after that the
        last 429's wait is raised as `CloudRateLimited`.
        """
        deadline = self._clock() + self.limit.max_wait
        while True:
            async with self._gate:
                await self._wait_for_turn(deadline)
                slot = [math.inf]
                self._slots.append(slot)
                probing = self._probing
                if probing:  # one call at a time until the tenant accepts again
                    result = await self._run(call, slot)
                    wait = self._settle(retry_after(result))
            if not probing:
                result = await self._run(call, slot)
                wait = self._settle(retry_after(result))
            if wait is None:
                return result

    async def _run(self, call: Callable[[], Awaitable[T]], slot: list[float]) -> T:
        try:
            return await call()
        finally:
            slot[0] = self._clock()
            self._progress.set()
            self._progress = asyncio.Event()

    def _settle(self, wait: float | None) -> float | None:
        if wait is None:
            self._probing = False
            return None
        self.rate_limited += 1
        wait = min(max(wait, 0.0), MAX_RETRY_AFTER)
        self._paused_until = max(self._paused_until, self._clock() + wait)
        self._probing = True
        return wait

    async def _wait_for_turn(self, deadline: float) -> None:
        window, most = self.limit.per_seconds, self.limit.max_requests
        while True:
            now = self._clock()
            self._slots = [slot for slot in self._slots if slot[0] > now - window]
            turn = self._paused_until
            if len(self._slots) >= most:
                ends = sorted(slot[0] for slot in self._slots)
                turn = max(turn, ends[len(ends) - most] + window)
            if turn <= now:
                return
            if turn == math.inf:  # every slot that blocks is on the wire: wait for an answer
                await self._progress.wait()
                continue
            if turn > deadline:
                why = (
                    "Qlik Cloud answered 429 and asked to wait"
                    if turn == self._paused_until
                    else f"this process may send {most} such calls per {window:g} s"
                )
                raise CloudRateLimited(
                    f"{self.name}: rate limit ({why}); the call would wait {turn - now:.0f} s, "
                    f"longer than max_wait ({self.limit.max_wait:g} s): lower the call rate "
                    "(reuse tokens until they expire), give this instance a larger share, or "
                    "raise max_wait",
                    retry_after=turn - now,
                )
            await self._sleep(turn - now)
