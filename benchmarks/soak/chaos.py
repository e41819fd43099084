"""The chaos schedule: which fault when, for how long, and how each one is done and undone.

Faults come in rounds; each round is a seeded shuffle of every kind, so a run long enough for
one round has every kind at least once, and the same seed gives the same schedule. Faults never
overlap: each is followed by a quiet `gap` in which the system must recover (the checker counts
every failure against the fault that started last, and measures recovery from its end).

| kind | done | undone |
|---|---|---|
| `qlik_restart` | the simulator forgets every session (Qlik restarted) | (instant) |
| `qlik_5xx` | every proxy-port answer is 502, 503 or 504 | after `window` |
| `qlik_latency` | every proxy-port answer waits 3 s, or 15 s (over the instances' 10 s read timeout) | after `window` |
| `ws_close` | Qlik closes every WebSocket (1001, 1011 or 1012) | (instant) |
| `redis_restart` | Redis is killed (SIGKILL) | after `window`, started again, empty |
| `instance_restart` | app instance 1 is killed (SIGKILL); instance 0 runs the whole time | after `window`, started again |
| `browser_vanish` | a tenth of the browsers leave mid-download and mid-WebSocket | (instant) |
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx2 as httpx

from .browser import Browser
from .checker import Checker
from .cluster import Cluster

__all__ = ["KINDS", "Chaos", "Planned", "plan"]

KINDS = (
    "qlik_restart",
    "qlik_5xx",
    "qlik_latency",
    "ws_close",
    "redis_restart",
    "instance_restart",
    "browser_vanish",
)
_WINDOWED = frozenset({"qlik_5xx", "qlik_latency", "redis_restart", "instance_restart"})
#: The instance the chaos kills; the other one runs the whole time (its leak figures cover it all).
KILLED_INSTANCE = 1


@dataclass(frozen=True)
class Planned:
    kind: str
    at: float  # seconds into the run
    duration: float  # 0 for an instant fault
    param: float  # status, latency, close code or browser share, per kind


def _param(kind: str, rng: random.Random) -> float:
    if kind == "qlik_5xx":
        return rng.choice((502, 503, 504))
    if kind == "qlik_latency":
        return rng.choice((3.0, 15.0))
    if kind == "ws_close":
        return rng.choice((1001, 1011, 1012))
    if kind == "browser_vanish":
        return 0.1
    return 0


def plan(
    duration: float,
    *,
    warmup: float,
    window: float,
    gap: float,
    seed: int,
    kinds: Sequence[str] = KINDS,
) -> list[Planned]:
    """Faults from `warmup` on, in shuffled rounds of every kind in `kinds`, each followed by
    `gap` quiet seconds, until the next one would not end (and be recovered from) before
    `duration`."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ValueError(f"fault kinds must be some of {', '.join(KINDS)}; got {list(kinds)}")
    rng = random.Random(seed)
    at = warmup
    planned: list[Planned] = []
    while True:
        for kind in rng.sample(list(kinds), len(kinds)):
            length = window if kind in _WINDOWED else 0.0
            if at + length + gap > duration:
                return planned
            planned.append(Planned(kind, at, length, _param(kind, rng)))
            at += length + gap


class Chaos:
    """Carries a plan out against the cluster, telling the checker as each fault starts and ends."""

    def __init__(
        self,
        cluster: Cluster,
        control: httpx.AsyncClient,
        checker: Checker,
        browsers: Sequence[Browser],
        clock: Callable[[], float],
        seed: int,
    ) -> None:
        self.cluster = cluster
        self.control = control
        self.checker = checker
        self.browsers = browsers
        self.clock = clock
        self.rng = random.Random(seed)
        #: Called with an instance's index once it serves again after a restart.
        self.restarted: Callable[[int], Awaitable[None]] | None = None

    async def snapshot_logins(self) -> None:
        """Qlik's sessions-created count per user, into the checker (the login-storm check)."""
        users = [b.user for b in self.browsers]
        counts = (await self.control.post("/logins", json=users)).raise_for_status().json()
        self.checker.logins(self.clock(), counts)

    async def run(self, planned: Sequence[Planned]) -> None:
        for fault in planned:
            await asyncio.sleep(max(0.0, fault.at - self.clock()))
            instance = KILLED_INSTANCE if fault.kind == "instance_restart" else None
            index = self.checker.fault_started(
                fault.kind, self.clock(), instance=instance, detail=f"{fault.param:g}"
            )
            # Logins so far, counted before the fault can cause any: the next period is its own.
            await self.snapshot_logins()
            try:
                await self._do(fault)
                if fault.duration:
                    await asyncio.sleep(fault.duration)
            finally:
                await self._undo(fault)
                self.checker.fault_ended(index, self.clock())

    async def _do(self, fault: Planned) -> None:
        kind, param = fault.kind, fault.param
        if kind == "qlik_restart":
            await self._control("/restart")
        elif kind == "qlik_5xx":
            await self._control(f"/fail?status={int(param)}")
        elif kind == "qlik_latency":
            await self._control(f"/latency?seconds={param}")
        elif kind == "ws_close":
            await self._control(f"/close?code={int(param)}")
        elif kind == "redis_restart":
            await asyncio.to_thread(self.cluster.kill_redis)
        elif kind == "instance_restart":
            await asyncio.to_thread(self.cluster.kill_instance, KILLED_INSTANCE)
        elif kind == "browser_vanish":
            count = max(2, round(len(self.browsers) * param))
            for browser in self.rng.sample(list(self.browsers), min(count, len(self.browsers))):
                browser.vanish()

    async def _undo(self, fault: Planned) -> None:
        if fault.kind in ("qlik_5xx", "qlik_latency"):
            await self._control("/clear")
        elif fault.kind == "redis_restart":
            await asyncio.to_thread(self.cluster.start_redis)
        elif fault.kind == "instance_restart":
            await asyncio.to_thread(self.cluster.start_instance, KILLED_INSTANCE)
            if self.restarted is not None:
                await self.restarted(KILLED_INSTANCE)

    async def _control(self, path: str) -> None:
        (await self.control.post(path)).raise_for_status()
