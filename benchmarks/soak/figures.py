"""What the soak's judges share: the limits of a run, what a fault and a sample are, the verdict."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Examples", "Fault", "Limits", "Sample", "Verdict"]

_EXAMPLES = 10


@dataclass(frozen=True)
class Limits:
    """Bounds of a run (seconds, bytes, counts)."""

    hung: float = 60.0
    recovery: float = 60.0
    rss_growth: int = 128 * 1024 * 1024
    task_slack: int = 5
    fd_slack: int = 60  # the Redis pool (50) keeps its idle connections


@dataclass
class Fault:
    """One fault as carried out: when, on which instance (kills), and the failures it caused."""

    kind: str
    started: float
    ended: float | None = None
    instance: int | None = None
    detail: str = ""
    failed: Counter[str] = field(default_factory=Counter)  # clean failures, by status / close
    unclean: int = 0


@dataclass(frozen=True)
class Sample:
    """One app instance's RSS, open fds and asyncio tasks; `phase` "start" (idle, before its
    load), "load", or "end" (idle, after the load)."""

    instance: int
    generation: int
    at: float
    phase: str
    rss: int
    fds: int
    tasks: int


@dataclass
class Verdict:
    violations: list[str]
    figures: dict[str, object]

    @property
    def passed(self) -> bool:
        return not self.violations


@dataclass
class Examples:
    """A count, and the first few cases for the report."""

    count: int = 0
    seen: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.seen) < _EXAMPLES:
            self.seen.append(text)
