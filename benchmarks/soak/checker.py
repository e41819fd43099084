"""The soak's judge: what the browsers saw, what the chaos did, what the processes used → a verdict.

Pure bookkeeping, no I/O, so it is tested on its own (`tests/benchmarks/test_soak_checker.py`).
The run feeds it as things happen, in memory bounded by users × faults (not by requests):

- `answer(...)`: one HTTP request (or WebSocket handshake) a browser made, with the simulator's
  user tag; `frame(...)`: one engine frame's tag; `closed(...)`: a WebSocket the server closed;
- `fault_started(...)` / `fault_ended(...)`: the chaos schedule as it was carried out;
- `logout(...)`, `logins(...)`: app logouts, and Qlik's count of sessions created per user,
  snapshot at every fault start and at the end;
- `sample(...)`: RSS, open file descriptors and asyncio tasks of one app instance;
- `log(...)`: the unhandled exceptions found in a process's log.

The rules (each broken rule is a violation; a run passes with none):

1. **No cross-user answer**: a tag that names another user than the browser's (header or frame).
   Answers that reach Qlik on a session must be tagged, so an untagged one is a violation too
   (the check would otherwise be vacuous).
2. **Nothing hangs**: no request without an answer within the bound.
3. **Every failure is clean**: HTTP 502/503/504, or a WebSocket close 1000/1001/1011-1014; a
   dropped connection only from the instance that was killed. Anything else (a 500, a 403, a
   close 1006 from a live instance, a body that does not match) is not.
4. **Failures have a cause and an end**: each is counted against the first fault in effect while
   its request ran (else the one that started last: effects linger; one before the first fault is
   a violation), and every user it hit succeeds again within the recovery bound of its end.
5. **No login storm** (`logins.py`): per user and per period between fault starts, Qlik logins
   stay within what explains them: one after a fault that loses sessions, plus the user's first
   login and one per app logout.
6. **No leak** (`resources.py`): after the load, an instance's asyncio tasks and file descriptors
   are back to what it had when it started (plus its Redis pool), and its RSS grew by less than
   the bound.
7. **No unhandled exception** in any process's log.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..report import percentile
from .figures import Examples, Fault, Limits, Sample, Verdict
from .logins import Snapshot, judge_logins
from .resources import judge_resources

__all__ = ["CLEAN_CLOSES", "CLEAN_STATUSES", "Checker"]

CLEAN_STATUSES = frozenset({502, 503, 504})
#: Normal (a Qlik notice then close), going away, server error, restart, try later, bad gateway.
CLEAN_CLOSES = frozenset({1000, 1001, 1011, 1012, 1013, 1014})
#: Fault kinds that kill one app instance: its dropped connections are clean.
INSTANCE_KILLING = frozenset({"instance_restart"})


@dataclass
class _KindSummary:
    count: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    unclean: int = 0

    def figures(self, recovery: list[float]) -> dict[str, object]:
        return {
            "count": self.count,
            "failed": dict(sorted(self.failed.items())),
            "unclean": self.unclean,
            "recovery": {
                "users": len(recovery),
                "p50": percentile(recovery, 0.5),
                "p99": percentile(recovery, 0.99),
                "max": max(recovery, default=float("nan")),
            },
        }


class Checker:
    """Collects a run's observations and judges them (see the module docstring)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.faults: list[Fault] = []
        self._starts: list[float] = []
        self.requests: Counter[str] = Counter()  # per kind, every answer
        self.ok = 0
        self.frames = 0
        self.tagged = 0
        self.cross_user = Examples()
        self.untagged = Examples()
        self.hung = Examples()
        self.unclean = Examples()
        self.causeless = Examples()
        self.closes: Counter[int] = Counter()
        self.vanished = 0
        # user -> index of the fault whose failure they have not recovered from yet
        self._pending: dict[str, int] = {}
        self._recovered: dict[tuple[int, str], float] = {}  # (fault, user) -> success time
        self._logouts: list[tuple[float, str]] = []
        self._snapshots: list[Snapshot] = []
        self.samples: list[Sample] = []
        self.logs: dict[str, list[str]] = {}

    # -- the chaos ------------------------------------------------------------------------------

    def fault_started(
        self, kind: str, at: float, instance: int | None = None, detail: str = ""
    ) -> int:
        self.faults.append(Fault(kind, at, instance=instance, detail=detail))
        self._starts.append(at)
        return len(self.faults) - 1

    def fault_ended(self, index: int, at: float) -> None:
        self.faults[index].ended = at

    def _fault_at(self, at: float) -> int | None:
        """The fault that started last at `at` (None before the first)."""
        index = bisect.bisect_right(self._starts, at) - 1
        return index if index >= 0 else None

    def _kind_at(self, at: float) -> str:
        index = self._fault_at(at)
        return "start" if index is None else self.faults[index].kind

    def _cause(self, started: float, ended: float) -> int | None:
        """The fault a failure of a request made over [started, ended] is counted against: the
        first fault in effect during it (a 504 that a latency spike caused may only arrive after
        the next fault began), else the one that started last (an effect that lingers)."""
        first = bisect.bisect_right(self._starts, started) - 1
        for index in range(max(first, 0), len(self.faults)):
            fault = self.faults[index]
            if fault.started > ended:
                break
            end = fault.ended if fault.ended is not None else ended
            if fault.started <= ended and end >= started:
                return index
        return self._fault_at(ended)

    # -- what the browsers saw ------------------------------------------------------------------

    def answer(
        self,
        user: str,
        kind: str,
        *,
        instance: int,
        started: float,
        ended: float,
        status: int | None,
        tag: str | None = None,
        tagged: bool = False,
        error: str | None = None,
        detail: str = "",
    ) -> None:
        """One request. `tagged`: an answer of this kind must carry the simulator's tag when it
        succeeds (it ran on the user's Qlik session). `error`: "transport" (no HTTP answer),
        "hung" (no answer within the bound), or what was wrong with a 2xx body. `detail`: what
        the browser knew when it gave up on a hung one (where to look next)."""
        self.requests[kind] += 1
        self._check_tag(user, kind, tag, ended)
        span = (started, ended)
        if error == "hung":
            self.hung.add(f"{user} {kind} started at {started:.1f}s {detail}".rstrip())
            self._failed(user, span, f"hung {kind}", clean=False)
            return
        if error is None and status is not None and (status == 101 or 200 <= status < 400):
            if tagged and tag is None:
                self.untagged.add(f"{user} {kind} {status} at {ended:.1f}s")
            self.ok += 1
            self._succeeded(user, ended)
            return
        if error == "transport":
            kill = self._kill_during(instance, span)
            self._failed(
                user, span, "connection lost", clean=kill is not None, what=kind, cause=kill
            )
        elif error is not None:
            self._failed(user, span, "bad body", clean=False, what=f"{kind}: {error}")
        else:
            clean = status in CLEAN_STATUSES
            self._failed(user, span, str(status), clean=clean, what=f"{kind} {status}")

    def frame(self, user: str, tag: str | None, at: float) -> None:
        """One engine frame; every frame of an engine socket carries its user's tag."""
        self.frames += 1
        if tag is None:
            self.untagged.add(f"{user} engine frame at {at:.1f}s")
        self._check_tag(user, "engine frame", tag, at)

    def closed(
        self, user: str, code: int | None, *, instance: int, at: float, detail: str = ""
    ) -> None:
        """A WebSocket the server side closed (not the browser), with its close code."""
        self.closes[code or 1006] += 1
        if code in CLEAN_CLOSES:
            self._failed(user, (at, at), f"close {code}", clean=True)
        else:
            kill = self._kill_during(instance, (at, at))
            label = f"close {code or 1006}"
            what = f"{label} from instance {instance} {detail}".rstrip()
            self._failed(user, (at, at), label, clean=kill is not None, what=what, cause=kill)

    def vanished_browser(self, user: str, at: float) -> None:
        """A browser that dropped its connection mid-stream on purpose (a chaos fault)."""
        self.vanished += 1

    def _check_tag(self, user: str, kind: str, tag: str | None, at: float) -> None:
        if tag is None:
            return
        self.tagged += 1
        if tag != user:
            self.cross_user.add(f"{user} got an answer for {tag} ({kind} at {at:.1f}s)")

    def _kill_during(self, instance: int, span: tuple[float, float]) -> int | None:
        """The fault that had `instance` down (killed, not yet back) during `span`, if any."""
        started, ended = span
        for index, f in enumerate(self.faults):
            if (
                f.kind in INSTANCE_KILLING
                and f.instance == instance
                and f.started <= ended
                and (f.ended is None or f.ended >= started)
            ):
                return index
        return None

    def _failed(
        self,
        user: str,
        span: tuple[float, float],
        label: str,
        *,
        clean: bool,
        what: str | None = None,
        cause: int | None = None,
    ) -> None:
        """Count a failure against its fault (`cause`, else `_cause`); note the user as hit."""
        at = span[1]
        index = cause if cause is not None else self._cause(*span)
        if index is None:
            self.causeless.add(f"{user} {what or label} at {at:.1f}s")
            return
        fault = self.faults[index]
        if clean:
            fault.failed[label] += 1
        else:
            fault.unclean += 1
            self.unclean.add(f"{user} {what or label} at {at:.1f}s during {fault.kind}")
        self._pending[user] = index
        self._recovered.pop((index, user), None)

    def _succeeded(self, user: str, at: float) -> None:
        index = self._pending.pop(user, None)
        if index is not None:
            self._recovered[(index, user)] = at

    # -- Qlik logins ----------------------------------------------------------------------------

    def logout(self, user: str, at: float) -> None:
        self._logouts.append((at, user))

    def logins(self, at: float, counts: dict[str, int]) -> None:
        """Qlik's count of sessions ever created per user, at `at` (at every fault start)."""
        self._snapshots.append((at, dict(counts)))

    # -- the processes --------------------------------------------------------------------------

    def sample(self, sample: Sample) -> None:
        self.samples.append(sample)

    def log(self, process: str, exceptions: list[str]) -> None:
        self.logs[process] = exceptions

    # -- the verdict ----------------------------------------------------------------------------

    def verdict(self, ended: float) -> Verdict:
        violations: list[str] = []
        for name, found in (
            ("cross-user answers", self.cross_user),
            ("untagged answers from Qlik", self.untagged),
            ("hung requests", self.hung),
            ("unclean failures", self.unclean),
            ("failures with no fault to explain them", self.causeless),
        ):
            if found.count:
                violations.append(f"{found.count} {name}, e.g. {found.seen[:3]}")
        if not self.tagged:
            violations.append("no tagged answer was checked: the cross-user check saw nothing")
        recovery = self._recovery(ended, violations)
        storms = judge_logins(self._snapshots, self._logouts, self._kind_at, violations)
        resources = judge_resources(self.samples, self.limits, violations)
        for process, exceptions in self.logs.items():
            if exceptions:
                violations.append(
                    f"{len(exceptions)} unhandled exceptions in {process}'s log, "
                    f"e.g. {exceptions[0][:300]!r}"
                )
        figures: dict[str, object] = {
            "requests": sum(self.requests.values()),
            "requests_by_kind": dict(self.requests),
            "ok": self.ok,
            "frames": self.frames,
            "tagged_checked": self.tagged,
            "cross_user": self.cross_user.count,
            "untagged": self.untagged.count,
            "hung": self.hung.count,
            "unclean": self.unclean.count,
            "causeless": self.causeless.count,
            "closes": dict(self.closes),
            "vanished": self.vanished,
            "faults": recovery,
            "logins": storms,
            "resources": resources,
            "exceptions": {p: len(e) for p, e in self.logs.items()},
        }
        return Verdict(violations, figures)

    def _recovery(self, ended: float, violations: list[str]) -> dict[str, dict[str, object]]:
        """Per fault kind: occurrences, clean failures, unclean ones, recovery p50/p99/max."""
        times: dict[str, list[float]] = defaultdict(list)
        for (index, _user), at in self._recovered.items():
            fault = self.faults[index]
            times[fault.kind].append(max(0.0, at - (fault.ended or fault.started)))
        slow = [(k, t) for k, ts in times.items() for t in ts if t > self.limits.recovery]
        if slow:
            violations.append(
                f"{len(slow)} recoveries slower than {self.limits.recovery:g} s, e.g. {slow[:3]}"
            )
        stuck = [
            (self.faults[index].kind, user)
            for user, index in self._pending.items()
            if ended - (self.faults[index].ended or self.faults[index].started)
            > self.limits.recovery
        ]
        if stuck:
            violations.append(f"{len(stuck)} users never recovered, e.g. {stuck[:3]}")
        per_kind: dict[str, _KindSummary] = {}
        for fault in self.faults:
            summary = per_kind.setdefault(fault.kind, _KindSummary())
            summary.count += 1
            summary.failed.update(fault.failed)
            summary.unclean += fault.unclean
        return {kind: s.figures(times.get(kind, [])) for kind, s in per_kind.items()}
