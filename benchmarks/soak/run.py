"""One soak run: start the cluster, let the browsers in, carry the chaos out, judge, stop.

Phases (times from the run's start): the processes start and each instance is sampled idle;
browsers arrive over `ramp` seconds; faults run from `warmup` on (see `chaos.plan`); at `duration`
the browsers stop, every instance is left to settle and sampled idle again; the processes are
stopped by PID and their logs searched for unhandled exceptions. Everything bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

from .balancer import Balancer
from .browser import Browser, Pace
from .chaos import KINDS, Chaos, plan
from .checker import Checker
from .cluster import Cluster
from .figures import Limits, Sample, Verdict

__all__ = ["SoakSettings", "exceptions_in", "run_soak"]

#: What an unhandled exception leaves in a Python process's log (uvicorn, asyncio, logging).
_EXCEPTION = re.compile(
    r"Traceback \(most recent call last\)|Exception in ASGI application"
    r"|exception was never retrieved|Unhandled exception"
)


@dataclass(frozen=True)
class SoakSettings:
    """A run's size and rhythm (seconds). `for_duration` scales the rhythm to the run's length."""

    duration: float
    users: int = 300
    seed: int = 1
    auth: str = "session"
    ws_client: str | None = None  # the relays' upstream client (None: the library's default)
    faults: tuple[str, ...] = KINDS  # the fault kinds the chaos draws from
    log_level: str | None = None  # the middleware's log level in the instances' logs
    warmup: float = 60.0
    window: float = 20.0  # how long a windowed fault lasts
    gap: float = 40.0  # quiet after each fault
    ramp: float = 30.0  # the browsers arrive over this long
    sample_every: float = 5.0
    settle: float = 60.0  # the longest wait for the instances to go idle after the load
    pace: Pace = field(default_factory=Pace)
    limits: Limits = field(default_factory=Limits)
    cross_user_every: int = 0  # a planted bug, for the checker's own test (instance.py)

    @classmethod
    def for_duration(cls, seconds: float, **options: object) -> SoakSettings:
        """Under ten minutes, a short rhythm (every fault kind in a minute) and busier users."""
        if seconds >= 600:
            return cls(duration=seconds, **options)  # type: ignore[arg-type]
        quick = {
            "warmup": 8.0,
            "window": 3.0,
            "gap": 3.0,
            "ramp": 4.0,
            "sample_every": 2.0,
            "settle": 40.0,
            "pace": Pace(
                think=(1.0, 3.0),
                view=(1.0, 3.0),
                refresh=(0.5, 1.5),
                download=0.2,
                download_size=(256 << 10, 2 << 20),
                upload=0.2,
                upload_size=(64 << 10, 1 << 20),
                logout=0.05,
                hung=30.0,
            ),
            "limits": Limits(hung=30.0, recovery=30.0),
        }
        return cls(duration=seconds, **(quick | options))  # type: ignore[arg-type]


@dataclass
class SoakResult:
    settings: SoakSettings
    verdict: Verdict
    directory: Path
    qlik: list[dict[str, int]] = field(default_factory=list)  # the simulator's own samples
    load: list[float] = field(default_factory=list)  # the machine's 1-minute load average


def exceptions_in(log: Path) -> list[str]:
    """The unhandled exceptions in one log file, each with the lines that follow its marker."""
    lines = log.read_text(errors="replace").splitlines()
    return ["\n".join(lines[i : i + 12]) for i, line in enumerate(lines) if _EXCEPTION.search(line)]


async def run_soak(settings: SoakSettings, directory: Path | None = None) -> SoakResult:
    """Run the soak; logs and certificates go to `directory` (a temporary one if None)."""
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        return await _run(settings, directory)
    raise AssertionError("unreachable")  # pragma: no cover - mypy: the with block returns


async def _run(settings: SoakSettings, directory: Path) -> SoakResult:
    cluster = Cluster(
        directory,
        auth=settings.auth,
        ws_client=settings.ws_client,
        log_level=settings.log_level,
        cross_user_every=settings.cross_user_every,
    )
    checker = Checker(settings.limits)
    result = SoakResult(settings, Verdict([], {}), directory)
    await asyncio.to_thread(cluster.start)
    started = time.monotonic()  # the run's clock starts with the processes up

    def clock() -> float:
        return time.monotonic() - started

    try:
        async with (
            httpx.AsyncClient(base_url=cluster.control_url, timeout=30) as control,
            httpx.AsyncClient(timeout=5) as probe,
        ):
            sampler = _Sampler(cluster, probe, checker, clock)
            for index in range(len(cluster.instance_urls)):
                await sampler.sample(index, "start")
            balancer = Balancer(cluster.instance_urls)
            rng = random.Random(settings.seed)
            browsers = [
                Browser(n, balancer, checker, settings.pace, clock, random.Random(rng.random()))
                for n in range(1, settings.users + 1)
            ]
            result.qlik.append((await control.get("/stats")).json())  # idle
            chaos = Chaos(cluster, control, checker, browsers, clock, settings.seed)
            chaos.restarted = sampler.restarted
            await chaos.snapshot_logins()
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(balancer.watch(stop)),
                asyncio.create_task(sampler.run(stop, settings.sample_every, control, result)),
            ]
            for n, browser in enumerate(browsers):
                delay = settings.ramp * n / len(browsers)
                tasks.append(asyncio.create_task(_arrive(browser, delay, stop)))
            planned = plan(
                settings.duration,
                warmup=settings.warmup,
                window=settings.window,
                gap=settings.gap,
                seed=settings.seed,
                kinds=settings.faults,
            )
            try:
                await chaos.run(planned)
                await asyncio.sleep(max(0.0, settings.duration - clock()))
            finally:
                stop.set()
                # Every browser finishes its step (bounded by the hung limit), then closes.
                await asyncio.wait(tasks, timeout=settings.pace.hung * 2 + 10)
                for browser in browsers:
                    await browser.aclose()
            await sampler.settle(settings.settle, settings.limits)
            await chaos.snapshot_logins()
            # Qlik too finishes what it was doing (a latency spike's answers sleep on after the
            # instances gave up on them), so stopping it interrupts nothing.
            await _drained(control, idle_tasks=result.qlik[0]["tasks"] if result.qlik else 0)
    finally:
        await asyncio.to_thread(cluster.stop)
    for name, logs in cluster.logs().items():
        checker.log(name, [e for log in logs for e in exceptions_in(log)])
    result.verdict = checker.verdict(clock())
    return result


async def _drained(control: httpx.AsyncClient, idle_tasks: int, limit: float = 30.0) -> None:
    """Wait (bounded) until the simulator runs no more tasks than when it was idle."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await control.get("/stats")).json()["tasks"] <= idle_tasks:
                return
        await asyncio.sleep(0.5)


async def _arrive(browser: Browser, delay: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
    if not stop.is_set():
        await browser.run(stop)


class _Sampler:
    """RSS, fds and asyncio tasks of each instance (from its `/_soak/stats`), and of the simulator."""

    def __init__(
        self,
        cluster: Cluster,
        client: httpx.AsyncClient,
        checker: Checker,
        clock: Callable[[], float],
    ) -> None:
        self.cluster = cluster
        self.client = client
        self.checker = checker
        self.clock = clock

    async def sample(self, index: int, phase: str) -> Sample | None:
        url = self.cluster.instance_urls[index] + "/_soak/stats"
        try:
            stats = (await self.client.get(url)).raise_for_status().json()
        except httpx.HTTPError:
            return None  # down (killed): nothing to sample
        sample = Sample(
            index,
            self.cluster.generation(index),
            self.clock(),
            phase,
            stats["rss"],
            stats["fds"],
            stats["tasks"],
        )
        self.checker.sample(sample)
        return sample

    async def restarted(self, index: int) -> None:
        """An instance is up again: its idle "start" sample, before the balancer sends it load."""
        await self.sample(index, "start")

    async def run(
        self, stop: asyncio.Event, every: float, control: httpx.AsyncClient, result: SoakResult
    ) -> None:
        while not stop.is_set():
            for index in range(len(self.cluster.instance_urls)):
                await self.sample(index, "load")
            with contextlib.suppress(httpx.HTTPError):
                result.qlik.append((await control.get("/stats")).json())
            result.load.append(_load_average())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    async def settle(self, limit: float, limits: Limits) -> None:
        """After the load: wait (up to `limit` s) until each instance is back near its start
        (idle pools expire), then take the "end" samples the leak check compares."""
        starts = {(s.instance, s.generation): s for s in self.checker.samples if s.phase == "start"}
        deadline = self.clock() + limit
        while self.clock() < deadline:
            settled = True
            for index in range(len(self.cluster.instance_urls)):
                start = starts.get((index, self.cluster.generation(index)))
                now = await self._peek(index)
                if start is not None and now is not None:
                    settled &= now["tasks"] <= start.tasks + limits.task_slack
                    settled &= now["fds"] <= start.fds + limits.fd_slack
            if settled:
                break
            await asyncio.sleep(1.0)
        for index in range(len(self.cluster.instance_urls)):
            await self.sample(index, "end")

    async def _peek(self, index: int) -> dict[str, int] | None:
        try:
            url = self.cluster.instance_urls[index] + "/_soak/stats"
            stats: dict[str, int] = (await self.client.get(url)).raise_for_status().json()
        except httpx.HTTPError:
            return None
        return stats


def _load_average() -> float:
    with contextlib.suppress(OSError):
        return float(Path("/proc/loadavg").read_text().split()[0])
    return float("nan")
