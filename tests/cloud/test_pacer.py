"""`RequestPacer`: first come first served, never more than the limit in any window, 429 pauses
everyone, nobody waits past max_wait. Time is a manual clock; sleeping only moves it."""

from __future__ import annotations

import asyncio

import pytest

from qlik_sso_middleware.cloud import CloudRateLimited, RateLimit, RequestPacer
from qlik_sso_middleware.testing import ManualClock

from .conftest import FakeSleep


def _pacer(clock: ManualClock, sleep: FakeSleep, limit: RateLimit) -> RequestPacer:
    return RequestPacer(limit, clock=clock, sleep=sleep)


def _most_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def test_calls_go_in_arrival_order_and_never_exceed_the_limit(
    clock: ManualClock, fake_sleep: FakeSleep
) -> None:
    pacer = _pacer(clock, fake_sleep, RateLimit(5, 60.0, max_wait=3600.0))
    sent: list[tuple[int, float]] = []

    def call(n: int):  # type: ignore[no-untyped-def]
        async def run() -> int:
            sent.append((n, clock()))
            return n

        return run

    results = await asyncio.gather(*(pacer.send(call(n), lambda _: None) for n in range(23)))
    assert results == list(range(23))
    assert [n for n, _ in sent] == list(range(23))
    times = [t for _, t in sent]
    assert _most_in_any_window(times, 60.0) == 5
    assert times[-1] - times[0] == pytest.approx(240.0)  # 23 calls, 5 a minute: the 5th minute
    assert pacer.rate_limited == 0


async def test_a_429_pauses_the_queue_and_then_probes_one_at_a_time(
    clock: ManualClock, fake_sleep: FakeSleep
) -> None:
    pacer = _pacer(clock, fake_sleep, RateLimit(100, 60.0, max_wait=3600.0))
    start = clock()
    refusing_until = start + 30.0  # the tenant's quota is spent (by another process) for 30 s
    events: list[tuple[str, float, str]] = []
    in_flight = 0

    async def call() -> str:
        nonlocal in_flight
        arrived = clock()
        events.append(("send", arrived, str(in_flight)))
        in_flight += 1
        await asyncio.sleep(0)  # on the wire: the others get to run
        in_flight -= 1
        answer = "429" if arrived < refusing_until else "ok"
        events.append(("done", arrived, answer))
        return answer

    results = await asyncio.gather(
        *(pacer.send(call, lambda a: 30.0 if a == "429" else None) for _ in range(8))
    )
    assert results == ["ok"] * 8
    # The 8 calls already on the wire met the 429; none of the retries did.
    assert pacer.rate_limited == 8
    retries = events[16:]
    assert all(when >= refusing_until for _, when, _ in retries)
    # The first retry went alone and came back before anything else was sent.
    assert retries[0] == ("send", refusing_until, "0")
    assert retries[1] == ("done", refusing_until, "ok")
    assert [kind for kind, _, _ in retries].count("send") == 8
    assert fake_sleep.slept == [30.0]


async def test_nobody_waits_past_max_wait(clock: ManualClock, fake_sleep: FakeSleep) -> None:
    pacer = _pacer(clock, fake_sleep, RateLimit(1, 60.0, max_wait=10.0))

    async def call() -> str:
        return "ok"

    assert await pacer.send(call, lambda _: None) == "ok"
    with pytest.raises(CloudRateLimited) as refused:
        await pacer.send(call, lambda _: None)
    assert refused.value.retry_after == pytest.approx(60.0)
    assert refused.value.status_code == 503
    assert fake_sleep.slept == []  # refused at once, not after sleeping
    assert "max_wait" in str(refused.value)


async def test_a_retry_after_beyond_max_wait_gives_up_after_one_429(
    clock: ManualClock, fake_sleep: FakeSleep
) -> None:
    pacer = _pacer(clock, fake_sleep, RateLimit(100, 60.0, max_wait=20.0))
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        return "429"

    with pytest.raises(CloudRateLimited, match="answered 429") as refused:
        await pacer.send(call, lambda _: 45.0)
    assert calls == 1
    assert refused.value.retry_after == pytest.approx(45.0)


async def test_an_absurd_retry_after_is_capped(clock: ManualClock, fake_sleep: FakeSleep) -> None:
    pacer = _pacer(clock, fake_sleep, RateLimit(100, 60.0, max_wait=7200.0))
    answers = iter(["429", "ok"])

    async def call() -> str:
        return next(answers)

    assert await pacer.send(call, lambda a: 1e9 if a == "429" else None) == "ok"
    assert fake_sleep.slept == [600.0]


async def test_a_slot_is_held_until_the_answer_is_back(
    clock: ManualClock, fake_sleep: FakeSleep
) -> None:
    pacer = _pacer(clock, fake_sleep, RateLimit(1, 60.0, max_wait=3600.0))
    answer_back = asyncio.Event()
    sent: list[float] = []

    async def slow() -> str:
        sent.append(clock())
        await answer_back.wait()
        return "ok"

    async def fast() -> str:
        sent.append(clock())
        return "ok"

    first = asyncio.create_task(pacer.send(slow, lambda _: None))
    second = asyncio.create_task(pacer.send(fast, lambda _: None))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(sent) == 1  # the second waits for the first's answer, not for a clock tick
    clock.advance(90)  # the first answer takes 90 s to come back
    answer_back.set()
    assert await first == await second == "ok"
    assert sent[1] - sent[0] == 150.0  # 60 s after the first answer, not after its release
