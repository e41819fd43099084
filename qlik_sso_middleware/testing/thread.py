"""`SimulatorThread`: the simulator in its own event loop on a background thread.

For synchronous tests and for tests that drive the simulator from subprocesses: every call that
touches the simulator's state is run inside its loop, so nothing races with the servers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .access import AccessPasses
from .records import SimSession
from .server import QlikSimulator
from .virtual_proxy import VirtualProxy

__all__ = ["SimulatorThread"]

T = TypeVar("T")


class SimulatorThread:
    """`QlikSimulator` running in its own event loop on a background thread.

    `with SimulatorThread(...) as sim:` exposes the simulator's attributes; methods that touch state
    (`restart`, `logins`, `live_sessions`, `clear_log`, `close_websockets`) run inside its loop.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="qlik-sim")
        self.sim: QlikSimulator | None = None

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

        async def make() -> QlikSimulator:
            sim = QlikSimulator(*self._args, **self._kwargs)
            await sim.start()
            return sim

        try:
            self.sim = self._run(make())
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            raise

    def stop(self) -> None:
        if self.sim is not None:
            self._run(self.sim.stop())
            self.sim = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _call(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self._run(wrapper())

    @property
    def _sim(self) -> QlikSimulator:
        if self.sim is None:
            raise RuntimeError("SimulatorThread is not running")
        return self.sim

    def __getattr__(self, name: str) -> Any:
        # Plain attributes (urls, ports, certificates, faults, clock, requests, frames).
        if name.startswith("_") or name == "sim":
            raise AttributeError(name)
        return getattr(self._sim, name)

    def logins(self, user: str | None = None, prefix: str | None = None) -> int:
        return self._call(lambda: self._sim.logins(user, prefix))

    def live_sessions(self, user: str | None = None, prefix: str | None = None) -> list[SimSession]:
        return self._call(lambda: self._sim.live_sessions(user, prefix))

    def clear_log(self) -> None:
        self._call(self._sim.clear_log)

    def restart(self) -> None:
        self._call(self._sim.restart)

    def close_websockets(self, code: int, reason: str = "") -> int:
        """Synchronous form of `faults.close_websockets`."""
        return self._run(self._sim._close_in_loop(code, reason))

    def configure_virtual_proxy(self, prefix: str, **changes: Any) -> VirtualProxy:
        """`QlikSimulator.configure_virtual_proxy`, run in the simulator's loop."""
        return self._call(lambda: self._sim.configure_virtual_proxy(prefix, **changes))

    def set_access(self, access: AccessPasses) -> None:
        """Replace who holds an access pass (`QlikSimulator.access`)."""

        def assign() -> None:
            self._sim.access = access

        self._call(assign)
