"""Fault injection for the simulated proxy: latency, forced statuses, no access pass, WS closes."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Faults"]


@dataclass
class _ForcedStatus:
    status: int
    remaining: int
    path_contains: str | None


class Faults:
    """Mutable switches that make the proxy port misbehave; safe to flip from any thread.

    - `latency`: seconds added before every HTTP answer (and WebSocket handshake answer) of the
      proxy port.
    - `api_latency`: the same for the QPS API port.
    - `fail_next(status, count, path_contains)`: the next `count` matching proxy requests get
      `status` (a WebSocket handshake is then refused with it).
    - `no_access_pass`: logins are refused with the "no access pass" page / `OnLicenseAccessDenied`.
    - `close_websockets(code, reason)`: close every live WebSocket with that code.
    - `clear(path_contains)`: withdraw the `fail_next` statuses for that path.
    - `api_drop_headers` / `api_drop_query`: names a gateway in front of the QPS API strips from
      every request before QPS sees it (a misconfigured reverse proxy: `{"x-qlik-xrfkey"}`).
    """

    def __init__(self) -> None:
        self.latency: float = 0.0
        self.api_latency: float = 0.0
        self.no_access_pass: bool = False
        self.api_drop_headers: set[str] = set()
        self.api_drop_query: set[str] = set()
        self._forced: list[_ForcedStatus] = []
        self._lock = threading.Lock()
        self._closer: Callable[[int, str], Awaitable[int]] | None = None

    def fail_next(self, status: int, count: int = 1, path_contains: str | None = None) -> None:
        """Answer `status` (with a small HTML body) instead of the real answer, `count` times."""
        if not 100 <= status <= 599 or count < 1:
            raise ValueError("status must be an HTTP status and count >= 1")
        with self._lock:
            self._forced.append(_ForcedStatus(status, count, path_contains))

    def take_forced_status(self, path: str) -> int | None:
        """Consume one forced status matching `path`, if any (used by the proxy app)."""
        with self._lock:
            for forced in self._forced:
                if forced.path_contains is None or forced.path_contains in path:
                    forced.remaining -= 1
                    if forced.remaining <= 0:
                        self._forced.remove(forced)
                    return forced.status
        return None

    def clear(self, path_contains: str) -> None:
        """Withdraw every pending `fail_next` whose `path_contains` is this one."""
        with self._lock:
            self._forced = [f for f in self._forced if f.path_contains != path_contains]

    def reset(self) -> None:
        """Switch every fault off."""
        self.api_drop_headers = set()
        self.api_drop_query = set()
        with self._lock:
            self._forced.clear()
        self.latency = 0.0
        self.api_latency = 0.0
        self.no_access_pass = False

    def bind(self, closer: Callable[[int, str], Awaitable[int]]) -> None:
        """Attach the simulator that owns these faults (done by the simulator)."""
        self._closer = closer

    async def close_websockets(self, code: int, reason: str = "") -> int:
        """Close every live WebSocket with `code`/`reason`; returns how many were closed."""
        if self._closer is None:
            return 0
        return await self._closer(code, reason)
