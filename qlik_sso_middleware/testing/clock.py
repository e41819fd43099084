"""Injectable time for the simulator: a monotonic-seconds callable, and a manual one for tests."""

from __future__ import annotations

import threading

__all__ = ["ManualClock"]


class ManualClock:
    """A clock that only moves when told to: timeouts and ticket expiry are tested without sleeping.

    Call it for the current time in seconds; `advance(seconds)` moves it forward. Thread-safe, so a
    test thread may advance the clock of a `SimulatorThread`.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by `seconds` (must be >= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("seconds: a clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self():.3f})"
