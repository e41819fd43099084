"""The soak for real (`benchmarks/soak`): CI's one-minute run with every fault kind must lose
nothing, and a planted cross-user bug must make it fail.

Sized for a loaded two-core machine: the minute's users are far fewer than the long run's 300
(`python -m benchmarks.soak --minutes 30`, figures in docs/security.md), and every bound it
judges by is generous (the rules are in `benchmarks/soak/checker.py`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak.chaos import KINDS
from benchmarks.soak.run import SoakSettings, run_soak
from benchmarks.soak.table import markdown

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CI_USERS = 30


async def test_a_minute_of_users_and_every_fault_loses_nothing(tmp_path: Path) -> None:
    result = await run_soak(SoakSettings.for_duration(60, users=CI_USERS, seed=1), tmp_path)
    figures = result.verdict.figures
    assert result.verdict.passed, markdown(result)
    faults: dict[str, dict[str, dict[str, int]]] = figures["faults"]  # type: ignore[assignment]
    assert set(faults) == set(KINDS)
    # Each fault that must strike the users did (a fault nobody felt would prove nothing).
    for kind in ("qlik_restart", "qlik_5xx", "ws_close", "redis_restart", "instance_restart"):
        assert sum(faults[kind]["failed"].values()) > 0, (kind, markdown(result))
    assert figures["vanished"] >= 2
    assert figures["tagged_checked"] > 1000  # type: ignore[operator]
    logins: dict[str, int] = figures["logins"]  # type: ignore[assignment]
    assert logins["users"] == CI_USERS
    assert logins["total"] > CI_USERS  # the restarts made everyone log in again


async def test_another_users_session_handed_out_now_and_then_fails_the_soak(
    tmp_path: Path,
) -> None:
    """The positive control of the whole run: a store that returns another user's cached session
    once in 25 lookups (`instance.CrossUserStore`) is caught by the simulator's tags."""
    settings = SoakSettings.for_duration(20, users=6, seed=1, cross_user_every=25)
    result = await run_soak(settings, tmp_path)
    assert not result.verdict.passed
    assert result.verdict.figures["cross_user"] > 0  # type: ignore[operator]
    assert any("cross-user answers" in v for v in result.verdict.violations)
