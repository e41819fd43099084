"""The in-process micro-benchmark still walks the middleware's real per-request path.

The benchmark calls proxy internals directly; when those change (as the xrfkey re-keying did), the
benchmark must fail here, in the suite, rather than at the end of CI's benchmark smoke.
"""

from __future__ import annotations

import asyncio

from benchmarks import micro


def test_the_request_overhead_walk_runs_on_the_current_proxy() -> None:
    microseconds = asyncio.run(micro.request_overhead_us(iterations=50))
    assert microseconds > 0


def test_the_session_memory_measure_counts_bytes_per_session() -> None:
    assert micro.session_bytes(users=200) > 0
