"""What a load balancer in front of the app instances does for the soak's browsers.

Each browser has a home instance and goes there while it is up; a connection refused or dropped
marks the instance down for everyone (a passive health check, as nginx's `max_fails`), and
`watch()` marks it up again once its `/health` answers (the active check). The browsers talk to
the instances directly, so every answer they see is the middleware's own.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx2 as httpx

__all__ = ["Balancer"]


class Balancer:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.up = [True] * len(urls)

    def pick(self, home: int) -> int:
        """`home` if it is up, else the next one that is (home again when none is)."""
        for step in range(len(self.urls)):
            index = (home + step) % len(self.urls)
            if self.up[index]:
                return index
        return home

    def failed(self, index: int) -> None:
        self.up[index] = False

    async def watch(self, stop: asyncio.Event, every: float = 0.5) -> None:
        """Until `stop`: probe the instances marked down, mark up those that answer."""
        async with httpx.AsyncClient(timeout=2) as client:
            while not stop.is_set():
                for index, url in enumerate(self.urls):
                    if not self.up[index]:
                        with contextlib.suppress(httpx.HTTPError):
                            if (await client.get(url + "/health")).status_code == 200:
                                self.up[index] = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
