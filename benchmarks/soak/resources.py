"""Leaks: each app instance's asyncio tasks, open fds and RSS, from its start to after the load.

Per start of an instance (a "generation"): tasks and fds must be back to what it had when it
started, idle (plus the slack its pools keep), and RSS may grow from warm (a quarter into its
load) to the end by less than the limit. A generation that was killed is shown, not judged.
"""

from __future__ import annotations

from collections import defaultdict

from .figures import Limits, Sample

__all__ = ["judge_resources"]


def judge_resources(
    samples: list[Sample], limits: Limits, violations: list[str]
) -> list[dict[str, object]]:
    """One row of figures per instance generation; a violation appended per leak."""
    by_generation: dict[tuple[int, int], list[Sample]] = defaultdict(list)
    for sample in samples:
        by_generation[(sample.instance, sample.generation)].append(sample)
    rows: list[dict[str, object]] = []
    for (instance, generation), found in sorted(by_generation.items()):
        start = next((s for s in found if s.phase == "start"), None)
        end = next((s for s in reversed(found) if s.phase == "end"), None)
        load = [s for s in found if s.phase == "load"]
        warm = load[len(load) // 4] if load else start
        rows.append(
            {
                "instance": instance,
                "generation": generation,
                "samples": len(found),
                "rss_start": start.rss if start else None,
                "rss_warm": warm.rss if warm else None,
                "rss_peak": max(s.rss for s in found),
                "rss_end": end.rss if end else None,
                "fds_start": start.fds if start else None,
                "fds_peak": max(s.fds for s in found),
                "fds_end": end.fds if end else None,
                "tasks_start": start.tasks if start else None,
                "tasks_peak": max(s.tasks for s in found),
                "tasks_end": end.tasks if end else None,
            }
        )
        if start is None or end is None or warm is None:
            continue  # killed, or sampled too little to judge
        name = f"instance {instance} (start {generation})"
        if end.tasks > start.tasks + limits.task_slack:
            violations.append(
                f"{name}: {end.tasks} asyncio tasks after the load, {start.tasks} before"
            )
        if end.fds > start.fds + limits.fd_slack:
            violations.append(f"{name}: {end.fds} open fds after the load, {start.fds} before")
        if end.rss - warm.rss > limits.rss_growth:
            grown = (end.rss - warm.rss) / 2**20
            violations.append(f"{name}: RSS grew {grown:.0f} MiB from warm to the end")
    return rows
