"""Waiting for something another task, thread or process makes true: on the event, not the clock.

`eventually` polls a condition until it holds, within a deadline generous enough for a loaded
two-core machine; it proves that something *did* happen and says what was awaited when it did
not. (A wait that proves something did *not* happen needs a positive control instead: the same
wait seeing the event when it does happen.)
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["eventually"]

#: Seconds a condition gets to become true. Conditions that hold at once cost nothing; this only
#: bounds how long a broken test hangs.
WITHIN = 30.0


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    what: str = "the condition",
    *,
    within: float = WITHIN,
) -> None:
    """Return as soon as `condition()` (sync or async) is true; AssertionError naming `what`
    after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.01)
