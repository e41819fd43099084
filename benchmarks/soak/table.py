"""The soak's report as Markdown: load held, faults survived, nothing lost, resources, verdict."""

from __future__ import annotations

import math
from typing import Any

from qlik_sso_middleware.proxy.ws_client import current_ws_client

from .chaos import KINDS
from .run import SoakResult

__all__ = ["markdown"]

_MIB = 1024 * 1024


def _s(value: object) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.1f}"
    return str(value)


def _mib(value: object) -> str:
    return f"{value / _MIB:.0f}" if isinstance(value, int) else "–"


def _counts(counter: dict[Any, int]) -> str:
    return ", ".join(f"{k} ×{v:,}" for k, v in counter.items()) or "none"


def markdown(result: SoakResult) -> str:
    s = result.settings
    f = result.verdict.figures
    load = [x for x in result.load if not math.isnan(x)]
    load_text = (
        f"load average {sum(load) / len(load):.1f} (max {max(load):.1f})" if load else "load n/a"
    )
    client = s.ws_client or f"{current_ws_client()} (the default)"
    faults = "" if set(s.faults) == set(KINDS) else f", faults limited to {', '.join(s.faults)}"
    lines = [
        f"**{s.users} users × {s.duration / 60:g} min**, seed {s.seed}, {s.auth} auth, "
        f"engine WebSocket client {client}{faults}, "
        f"2 app instances + Redis + simulator, each its own process; {load_text}.",
        "",
        "| load held | |",
        "|---|---|",
        f"| HTTP requests and engine calls | {f['requests']:,} ({f['ok']:,} answered 2xx) |",
        f"| by kind | {_counts(f['requests_by_kind'])} |",  # type: ignore[arg-type]
        f"| engine frames | {f['frames']:,} |",
        f"| browsers that left mid-stream | {f['vanished']} |",
        "",
        "| fault | times | failed, all cleanly (status / close code) | unclean "
        "| users hit | recovery p50 / p99 / max |",
        "|---|---|---|---|---|---|",
    ]
    faults: dict[str, dict[str, Any]] = f["faults"]  # type: ignore[assignment]
    for kind, row in faults.items():
        r = row["recovery"]
        lines.append(
            f"| {kind} | {row['count']} | {_counts(row['failed'])} | {row['unclean']} "
            f"| {r['users']} | {_s(r['p50'])} / {_s(r['p99'])} / {_s(r['max'])} s |"
        )
    logins: dict[str, Any] = f["logins"]  # type: ignore[assignment]
    per_period = logins.get("max_per_user_per_period", {})
    exceptions: dict[str, int] = f["exceptions"]  # type: ignore[assignment]
    lines += [
        "",
        "| nothing lost | |",
        "|---|---|",
        f"| answers for another user | {f['cross_user']} of {f['tagged_checked']:,} checked "
        f"(untagged: {f['untagged']}) |",
        f"| hung requests (no answer in {s.limits.hung:g} s) | {f['hung']} |",
        f"| unclean failures | {f['unclean']} |",
        f"| failures with no fault to explain them | {f['causeless']} |",
        f"| Qlik logins | {logins.get('total', '–')} for {logins.get('users', '–')} users; "
        f"most in one period per user, by the fault that began it: {_counts(per_period)}; "
        f"storms: {logins.get('storms', '–')} |",
        f"| unhandled exceptions in the logs | {_counts(exceptions)} |",
        "",
        "| instance (start) | RSS MiB start / warm / peak / end | fds start / peak / end "
        "| tasks start / peak / end |",
        "|---|---|---|---|",
    ]
    resources: list[dict[str, Any]] = f["resources"]  # type: ignore[assignment]
    for row in resources:
        lines.append(
            f"| {row['instance']} ({row['generation']}) | {_mib(row['rss_start'])} / "
            f"{_mib(row['rss_warm'])} / {_mib(row['rss_peak'])} / {_mib(row['rss_end'])} "
            f"| {row['fds_start']} / {row['fds_peak']} / {row['fds_end']} "
            f"| {row['tasks_start']} / {row['tasks_peak']} / {row['tasks_end']} |"
        )
    verdict = result.verdict
    lines += ["", "**Verdict: " + ("passed**" if verdict.passed else "FAILED**")]
    lines += [f"- {v}" for v in verdict.violations]
    return "\n".join(lines) + "\n"
