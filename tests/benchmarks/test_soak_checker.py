"""The soak's checker judged on made-up observations: every rule fires when broken, and only then.

(The checker is pure bookkeeping; `test_soak.py` runs it against the real processes.)
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from benchmarks.soak.chaos import KINDS, plan
from benchmarks.soak.checker import Checker
from benchmarks.soak.figures import Limits, Sample
from benchmarks.soak.run import exceptions_in

ALICE, BOB = "ACME\\alice", "ACME\\bob"


def checker() -> Checker:
    return Checker(Limits(hung=30, recovery=10, rss_growth=100, task_slack=2, fd_slack=5))


def ok(c: Checker, user: str, at: float, *, kind: str = "page", tag: str | None = "") -> None:
    c.answer(
        user, kind, instance=0, started=at, ended=at, status=200,
        tag=user if tag == "" else tag, tagged=True,
    )  # fmt: skip


def logins(c: Checker, at: float, alice: int, bob: int = 0) -> None:
    c.logins(at, {ALICE: alice, BOB: bob})


def healthy(c: Checker) -> Checker:
    """The bookkeeping every passing run has: answers checked, login snapshots."""
    ok(c, ALICE, 0.5)
    logins(c, 0.0, 0)
    logins(c, 100.0, 1)
    return c


def violations(c: Checker, at: float = 100.0) -> list[str]:
    return c.verdict(at).violations


def test_a_run_with_nothing_wrong_passes() -> None:
    c = healthy(checker())
    fault = c.fault_started("qlik_restart", 10.0)
    c.fault_ended(fault, 10.0)
    c.closed(ALICE, 1000, instance=0, at=10.1)
    ok(c, ALICE, 11.0)
    c.frame(ALICE, ALICE, 11.5)
    verdict = c.verdict(100.0)
    assert verdict.passed, verdict.violations
    assert verdict.figures["cross_user"] == 0
    assert verdict.figures["tagged_checked"] == 3


def test_an_answer_or_frame_for_another_user_is_a_violation() -> None:
    c = healthy(checker())
    ok(c, ALICE, 1.0, tag=BOB)
    c.frame(BOB, ALICE, 2.0)
    assert c.cross_user.count == 2
    assert any("2 cross-user answers" in v for v in violations(c))


def test_an_untagged_answer_from_qlik_is_a_violation_and_no_tag_at_all_too() -> None:
    c = healthy(checker())
    ok(c, ALICE, 1.0, tag=None)
    c.frame(ALICE, None, 2.0)
    assert any("2 untagged answers" in v for v in violations(c))
    # A run that never saw a tag could not have seen a cross-user answer either.
    silent = checker()
    logins(silent, 0.0, 0)
    logins(silent, 1.0, 1)
    silent.answer(ALICE, "login", instance=0, started=0, ended=0, status=200)
    assert any("saw nothing" in v for v in violations(silent))


def test_a_hung_request_is_a_violation() -> None:
    c = healthy(checker())
    c.fault_started("qlik_latency", 1.0)
    c.answer(ALICE, "rpc", instance=0, started=2, ended=32, status=None, error="hung")
    assert any("1 hung requests" in v for v in violations(c))


def test_clean_failures_are_counted_per_fault_and_unclean_ones_are_violations() -> None:
    c = healthy(checker())
    burst = c.fault_started("qlik_5xx", 10.0)
    c.answer(ALICE, "page", instance=0, started=11, ended=11, status=503)
    c.answer(BOB, "page", instance=0, started=11, ended=11, status=500)  # ours, not Qlik's
    c.answer(BOB, "download", instance=0, started=11, ended=12, status=200, error="3 of 9 bytes")
    c.closed(ALICE, 1011, instance=0, at=12.0)
    c.fault_ended(burst, 13.0)
    ok(c, ALICE, 14.0)
    ok(c, BOB, 14.0)
    assert c.faults[burst].failed == {"503": 1, "close 1011": 1}
    assert c.faults[burst].unclean == 2
    assert any("2 unclean failures" in v for v in violations(c))


def test_a_dropped_connection_is_clean_only_from_the_instance_that_was_killed() -> None:
    c = healthy(checker())
    kill = c.fault_started("instance_restart", 10.0, instance=1)
    c.answer(ALICE, "page", instance=1, started=9.5, ended=10.2, status=None, error="transport")
    c.closed(ALICE, None, instance=1, at=10.3)  # 1006: no close frame from a dead process
    c.answer(BOB, "page", instance=0, started=10.5, ended=10.5, status=None, error="transport")
    c.fault_ended(kill, 12.0)
    # After the restart the killed instance is up again: a drop is unexplained once more.
    c.answer(ALICE, "page", instance=1, started=13, ended=13, status=None, error="transport")
    assert c.faults[kill].failed == {"connection lost": 1, "close 1006": 1}
    assert c.unclean.count == 2


def test_a_failure_counts_against_the_fault_in_effect_when_its_request_began() -> None:
    c = healthy(checker())
    spike = c.fault_started("qlik_latency", 10.0)
    c.fault_ended(spike, 13.0)
    restart = c.fault_started("qlik_restart", 16.0)
    c.fault_ended(restart, 16.0)
    # Sent during the spike, answered 504 by the read timeout after the restart began.
    c.answer(ALICE, "page", instance=0, started=12, ended=22, status=504)
    c.closed(BOB, 1000, instance=0, at=16.1)
    assert c.faults[spike].failed == {"504": 1}
    assert c.faults[restart].failed == {"close 1000": 1}


def test_a_failure_before_any_fault_is_a_violation() -> None:
    c = healthy(checker())
    c.answer(ALICE, "page", instance=0, started=1, ended=1, status=503)
    assert any("no fault to explain them" in v for v in violations(c))


def test_recovery_is_measured_from_the_fault_end_and_bounded() -> None:
    c = healthy(checker())
    outage = c.fault_started("redis_restart", 10.0)
    c.answer(ALICE, "page", instance=0, started=11, ended=11, status=503)
    c.answer(BOB, "page", instance=0, started=11, ended=11, status=503)
    c.fault_ended(outage, 15.0)
    ok(c, ALICE, 17.0)  # 2 s after the end
    ok(c, BOB, 40.0)  # 25 s: over the 10 s bound
    figures = c.verdict(100.0).figures["faults"]
    recovery = figures["redis_restart"]["recovery"]  # type: ignore[index]
    assert (recovery["users"], recovery["p50"], recovery["max"]) == (2, 25.0, 25.0)
    assert any("1 recoveries slower than 10 s" in v for v in violations(c))
    # A user who never succeeds again is a violation of its own.
    never = healthy(checker())
    outage = never.fault_started("redis_restart", 10.0)
    never.answer(BOB, "page", instance=0, started=11, ended=11, status=503)
    never.fault_ended(outage, 15.0)
    assert any("1 users never recovered" in v for v in violations(never))


def test_logins_beyond_what_the_faults_and_logouts_explain_are_a_storm() -> None:
    c = healthy(checker())
    c._snapshots.clear()
    logins(c, 0.0, 0, 0)
    burst = c.fault_started("qlik_5xx", 10.0)
    logins(c, 10.0, 1, 1)  # everyone's first login (before the burst): fine
    c.fault_ended(burst, 12.0)
    restart = c.fault_started("qlik_restart", 20.0)
    logins(c, 20.0, 1, 1)
    c.fault_ended(restart, 20.0)
    c.logout(BOB, 25.0)
    spike = c.fault_started("qlik_latency", 30.0)
    logins(c, 30.0, 2, 2)  # one each after the restart: fine
    c.fault_ended(spike, 33.0)
    vanish = c.fault_started("browser_vanish", 40.0)
    logins(c, 40.0, 4, 3)  # alice: two more after a latency spike; bob: his relogin
    c.fault_ended(vanish, 40.0)
    logins(c, 50.0, 4, 3)
    storms = [v for v in violations(c) if "login storms" in v]
    assert storms and "alice: 2 logins in period 3 (after qlik_latency)" in storms[0]
    assert "bob" not in storms[0]
    assert c.verdict(60.0).figures["logins"]["max_per_user_per_period"] == {  # type: ignore[index]
        "start": 1,
        "qlik_5xx": 0,
        "qlik_restart": 1,
        "qlik_latency": 2,
        "browser_vanish": 0,
    }


def test_a_login_a_restart_explains_may_come_after_the_next_fault_but_restarts_do_not_stack() -> (
    None
):
    c = healthy(checker())
    c._snapshots.clear()
    logins(c, 0.0, 0, 0)
    for at, kind in ((10.0, "qlik_restart"), (12.0, "qlik_latency"), (20.0, "qlik_restart")):
        index = c.fault_started(kind, at)
        c.fault_ended(index, at)
        # First logins; then alice, kept waiting by the spike, logs in again only after it
        # began, bob at once.
        logins(c, at, {10.0: 1, 12.0: 1, 20.0: 2}[at], {10.0: 1, 12.0: 2, 20.0: 2}[at])
    # The second restart explains one more login each, not two (credits do not stack).
    logins(c, 30.0, 3, 4)
    storms = [v for v in violations(c) if "login storms" in v]
    assert len(storms) == 1 and "1 login storms" in storms[0]
    assert "bob: 2 logins in period 3 (after qlik_restart)" in storms[0]


def test_tasks_fds_and_memory_must_come_back_after_the_load() -> None:
    def run(end_tasks: int, end_fds: int, end_rss: int) -> list[str]:
        c = healthy(checker())
        c.sample(Sample(0, 1, 0.0, "start", rss=1000, fds=10, tasks=3))
        c.sample(Sample(0, 1, 5.0, "load", rss=1100, fds=90, tasks=60))
        c.sample(Sample(0, 1, 9.0, "end", rss=end_rss, fds=end_fds, tasks=end_tasks))
        # A killed instance has no "end": not judged.
        c.sample(Sample(1, 1, 0.0, "start", rss=1000, fds=10, tasks=3))
        c.sample(Sample(1, 1, 5.0, "load", rss=9999, fds=999, tasks=999))
        return violations(c)

    assert run(end_tasks=5, end_fds=15, end_rss=1200) == []
    assert any("6 asyncio tasks after the load, 3 before" in v for v in run(6, 15, 1200))
    assert any("16 open fds after the load" in v for v in run(5, 16, 1200))
    assert any("RSS grew" in v for v in run(5, 15, 1201))


def test_exceptions_in_a_log_are_violations(tmp_path: Path) -> None:
    log = tmp_path / "instance-0.1.log"
    log.write_text(
        "WARNING: Qlik answered 503\n"
        "ERROR:    Exception in ASGI application\nTraceback (most recent call last):\n"
        '  File "x.py", line 1\nValueError: boom\n'
        "Task exception was never retrieved\n"
    )
    found = exceptions_in(log)
    assert len(found) == 3  # the ASGI error, its traceback, the orphaned task
    assert "ValueError: boom" in found[0]
    c = healthy(checker())
    c.log("instance-0", found)
    c.log("qlik", [])
    assert [v for v in violations(c) if "unhandled exceptions" in v] == [
        f"3 unhandled exceptions in instance-0's log, e.g. {found[0][:300]!r}"
    ]


def test_the_chaos_plan_has_every_fault_kind_in_a_minute_one_at_a_time() -> None:
    planned = plan(60.0, warmup=8.0, window=3.0, gap=3.0, seed=1)
    assert {p.kind for p in planned} == set(KINDS)
    for before, after in itertools.pairwise(planned):
        assert before.at + before.duration + 3.0 <= after.at  # never overlapping, gap kept
    assert planned[0].at == 8.0
    assert planned[-1].at + planned[-1].duration + 3.0 <= 60.0
    assert plan(60.0, warmup=8.0, window=3.0, gap=3.0, seed=1) == planned  # reproducible
    assert plan(60.0, warmup=8.0, window=3.0, gap=3.0, seed=2) != planned


def test_the_chaos_plan_can_be_limited_to_some_fault_kinds() -> None:
    planned = plan(60.0, warmup=8.0, window=3.0, gap=3.0, seed=1, kinds=("ws_close", "qlik_5xx"))
    assert {p.kind for p in planned} == {"ws_close", "qlik_5xx"}
    assert len(planned) > 2  # rounds repeat the chosen kinds until the run ends
    with pytest.raises(ValueError, match="fault kinds must be some of"):
        plan(60.0, warmup=8.0, window=3.0, gap=3.0, seed=1, kinds=("ws_close", "meteor"))
    with pytest.raises(ValueError, match="fault kinds must be some of"):
        plan(60.0, warmup=8.0, window=3.0, gap=3.0, seed=1, kinds=())
