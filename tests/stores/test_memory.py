"""`MemorySessionStore` beyond the contract: the LRU bound and its options."""

from __future__ import annotations

import asyncio

import pytest

from qlik_sso_middleware.errors import ConfigurationError
from qlik_sso_middleware.stores.memory import MemorySessionStore
from tests.stores.store_harness import FakeClock, make_session


async def test_least_recently_used_entry_is_evicted_at_the_bound() -> None:
    store = MemorySessionStore(max_entries=3, clock=FakeClock())
    for key in ("a", "b", "c"):
        await store.set(key, make_session(), ttl=100)
    assert await store.get("a") is not None  # "b" is now the least recently used
    await store.set("d", make_session(), ttl=100)
    assert len(store) == 3
    assert await store.get("b") is None
    assert [await store.get(k) is not None for k in ("a", "c", "d")] == [True, True, True]
    assert await store.keys_for_user("DIR\\alice") == ["a", "c", "d"]


async def test_a_flood_of_users_stays_bounded() -> None:
    store = MemorySessionStore(max_entries=10, clock=FakeClock())
    for i in range(1000):
        await store.set(f"k{i}", make_session(f"DIR\\user{i}"), ttl=100)
    assert len(store) == 10
    assert await store.keys_for_user("DIR\\user0") == []
    assert await store.keys_for_user("DIR\\user999") == ["k999"]


async def test_idle_locks_are_dropped() -> None:
    store = MemorySessionStore()
    async with asyncio.timeout(10):
        for i in range(100):
            async with store.lock(f"k{i}"):
                pass
    assert store._locks == {}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_entries": 0}, "max_entries"),
        ({"lock_wait": -1}, "lock_wait"),
        ({"lock_wait": "1"}, "lock_wait"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        MemorySessionStore(**options)  # type: ignore[arg-type]
    assert info.value.field == field
