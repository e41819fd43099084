"""The `SessionStore` contract: every store (memory, Redis) passes exactly these tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest

from qlik_sso_middleware.errors import StoreUnavailable
from qlik_sso_middleware.stores.base import SessionStore
from tests.stores.store_harness import StoreHarness, make_session

KEY = "qlik.example:443|hdr|DIR\\alice"


def test_store_satisfies_protocol(harness: StoreHarness) -> None:
    assert isinstance(harness.make(), SessionStore)


async def test_get_of_unknown_key_is_none(harness: StoreHarness) -> None:
    assert await harness.make().get(KEY) is None


async def test_set_then_get_returns_the_same_session(harness: StoreHarness) -> None:
    store = harness.make()
    session = make_session()
    await store.set(KEY, session, ttl=100)
    assert await store.get(KEY) == session
    assert (await store.get(KEY) or make_session(value="x")).cookie_value == "cookie-secret-1"


async def test_the_attributes_fingerprint_is_kept(harness: StoreHarness) -> None:
    store = harness.make()
    session = dataclasses.replace(make_session(), fingerprint="0f" * 16)
    await store.set(KEY, session, ttl=100)
    assert await store.get(KEY) == session
    assert (await store.delete(KEY) or make_session()).fingerprint == "0f" * 16


async def test_a_credential_expiry_is_kept(harness: StoreHarness) -> None:
    # A Qlik Cloud access token is stored with the wall-clock second it stops working.
    store = harness.make()
    token = dataclasses.replace(
        make_session(value="token-secret"), cookie_name="qlik-cloud-access-token"
    )
    await store.set(KEY, dataclasses.replace(token, expires_at=1_700_021_600.5), ttl=100)
    await store.set("other", token, ttl=100)
    assert (await store.get(KEY) or token).expires_at == 1_700_021_600.5
    assert (await store.get("other") or make_session()).expires_at is None
    assert (await store.delete(KEY) or token).expires_at == 1_700_021_600.5


async def test_set_replaces_the_previous_session(harness: StoreHarness) -> None:
    store = harness.make()
    await store.set(KEY, make_session(value="first"), ttl=100)
    await store.set(KEY, make_session(value="second"), ttl=100)
    assert await store.get(KEY) == make_session(value="second")
    assert await store.keys_for_user("DIR\\alice") == [KEY]


@pytest.mark.parametrize("ttl", [0, -1])
async def test_set_rejects_a_non_positive_ttl(harness: StoreHarness, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await harness.make().set(KEY, make_session(), ttl=ttl)


async def test_session_expires_after_its_ttl(harness: StoreHarness) -> None:
    store = harness.make()
    await store.set(KEY, make_session(), ttl=100)
    await harness.advance(99)
    assert await store.get(KEY) is not None
    await harness.advance(101)
    assert await store.get(KEY) is None


async def test_get_slides_the_ttl(harness: StoreHarness) -> None:
    store = harness.make()
    await store.set(KEY, make_session(), ttl=100)
    for _ in range(4):  # 240 s in all, far past the ttl, alive because it is read
        await harness.advance(60)
        assert await store.get(KEY) == make_session()
    await harness.advance(101)
    assert await store.get(KEY) is None


async def test_keys_expire_independently(harness: StoreHarness) -> None:
    store = harness.make()
    await store.set("a", make_session(), ttl=100)
    await store.set("b", make_session(), ttl=100)
    await harness.advance(60)
    assert await store.get("a") is not None  # slides a, not b
    await harness.advance(60)
    assert await store.get("a") is not None
    assert await store.get("b") is None


async def test_delete_returns_the_session_and_removes_it(harness: StoreHarness) -> None:
    store = harness.make()
    await store.set(KEY, make_session(), ttl=100)
    assert await store.delete(KEY) == make_session()
    assert await store.get(KEY) is None
    assert await store.delete(KEY) is None
    assert await store.keys_for_user("DIR\\alice") == []


async def test_keys_for_user_lists_every_key_of_that_user_only(harness: StoreHarness) -> None:
    store = harness.make()
    alice_keys = ["srv1|vp|DIR\\alice", "srv2|vp|DIR\\alice", "srv1|other|DIR\\alice"]
    for key in alice_keys:
        await store.set(key, make_session(), ttl=100)
    await store.set("srv1|vp|DIR\\bob", make_session("DIR\\bob"), ttl=100)
    assert await store.keys_for_user("DIR\\alice") == sorted(alice_keys)
    assert await store.keys_for_user("DIR\\bob") == ["srv1|vp|DIR\\bob"]
    assert await store.keys_for_user("DIR\\carol") == []


async def test_keys_for_user_leaves_out_expired_and_deleted_keys(harness: StoreHarness) -> None:
    store = harness.make()
    await store.set("short", make_session(), ttl=100)
    await store.set("long", make_session(), ttl=300)
    await store.set("gone", make_session(), ttl=300)
    await store.delete("gone")
    await harness.advance(150)
    assert await store.keys_for_user("DIR\\alice") == ["long"]
    await harness.advance(151)
    assert await store.keys_for_user("DIR\\alice") == []


async def test_keys_for_user_finds_a_session_kept_alive_by_reads(harness: StoreHarness) -> None:
    # The per-user index must live as long as the sessions it lists, however long they slide.
    store = harness.make()
    await store.set(KEY, make_session(), ttl=100)
    for _ in range(10):
        await harness.advance(90)
        assert await store.get(KEY) is not None
        assert await store.keys_for_user("DIR\\alice") == [KEY]


async def test_lock_is_exclusive_and_the_waiter_enters_after_release(
    harness: StoreHarness,
) -> None:
    store = harness.make()
    events: list[str] = []
    first_inside = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with store.lock(KEY):
            events.append("first in")
            first_inside.set()
            await release_first.wait()
            events.append("first out")

    async def second() -> None:
        await first_inside.wait()
        async with store.lock(KEY):
            events.append("second in")

    async def control() -> None:
        # Started with the second task, on another key: three free locks taken one after the
        # other, each as fast as the second task's first try would have entered (wrongly).
        await first_inside.wait()
        for _ in range(3):
            async with store.lock(KEY + "|control"):
                pass

    async with asyncio.timeout(30):
        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await first_inside.wait()
        # Positive control: while the control task took three locks, the second task had every
        # chance to (wrongly) enter.
        await asyncio.create_task(control())
        assert events == ["first in"]
        release_first.set()
        await asyncio.gather(*tasks)
    assert events == ["first in", "first out", "second in"]


async def test_lock_gives_single_flight(harness: StoreHarness) -> None:
    store = harness.make()
    logins = 0

    async def request() -> str:
        nonlocal logins
        async with store.lock(KEY):
            session = await store.get(KEY)
            if session is None:
                logins += 1
                await asyncio.sleep(0.01)  # the login's round trips, other tasks pile up
                session = make_session(value=f"login-{logins}")
                await store.set(KEY, session, ttl=100)
        return session.cookie_value

    async with asyncio.timeout(30):
        values = await asyncio.gather(*(request() for _ in range(20)))
    assert logins == 1
    assert set(values) == {"login-1"}


async def test_lock_is_per_key(harness: StoreHarness) -> None:
    store = harness.make(lock_wait=0)
    async with store.lock("a"), store.lock("b"):
        pass


async def test_lock_not_taken_within_lock_wait_raises(harness: StoreHarness) -> None:
    store = harness.make(lock_wait=0.05)
    async with asyncio.timeout(30):
        async with store.lock(KEY):
            with pytest.raises(StoreUnavailable, match="lock_wait"):
                async with store.lock(KEY):
                    pytest.fail("entered a lock that is held")
        async with store.lock(KEY):  # free again, nothing left behind
            pass


async def test_lock_is_released_when_the_body_raises(harness: StoreHarness) -> None:
    store = harness.make(lock_wait=0)
    with pytest.raises(RuntimeError, match="login failed"):
        async with store.lock(KEY):
            raise RuntimeError("login failed")
    async with store.lock(KEY):
        pass


async def test_lock_is_released_when_the_owner_is_cancelled(harness: StoreHarness) -> None:
    store = harness.make(lock_wait=5)
    inside = asyncio.Event()

    async def owner() -> None:
        async with store.lock(KEY):
            inside.set()
            await asyncio.Event().wait()

    async with asyncio.timeout(30):
        task = asyncio.create_task(owner())
        await inside.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with store.lock(KEY):
            pass


async def test_expired_lock_is_taken_over_and_not_released_by_its_old_owner(
    shared_harness: StoreHarness,
) -> None:
    harness = shared_harness
    # Three instances sharing the backend; the first "dies" holding the lock.
    dead, second, third = (harness.make(lock_timeout=10, lock_wait=0) for _ in range(3))
    stuck = dead.lock(KEY)
    await stuck.__aenter__()
    with pytest.raises(StoreUnavailable):
        async with second.lock(KEY):
            pytest.fail("entered a lock that is held")
    await harness.advance(11)
    async with second.lock(KEY):
        # The old owner wakes up and leaves; it must not free the new owner's lock.
        await stuck.__aexit__(None, None, None)
        with pytest.raises(StoreUnavailable):
            async with third.lock(KEY):
                pytest.fail("entered a lock that is held")
    async with third.lock(KEY):
        pass
