"""`MemorySessionStore`'s per-user index: one key stored bare, several as a set, both ways back."""

from __future__ import annotations

from qlik_sso_middleware.stores.base import QlikSession
from qlik_sso_middleware.stores.memory import MemorySessionStore


def _session(user: str, value: str) -> QlikSession:
    return QlikSession("X-Qlik-Session", value, user, 0.0)


async def test_index_grows_to_several_keys_and_shrinks_back() -> None:
    store = MemorySessionStore()
    await store.set("a|ACME\\alice", _session("ACME\\alice", "1"), 60)
    assert await store.keys_for_user("ACME\\alice") == ["a|ACME\\alice"]
    await store.set("b|ACME\\alice", _session("ACME\\alice", "2"), 60)
    await store.set("c|ACME\\alice", _session("ACME\\alice", "3"), 60)
    await store.set("b|ACME\\alice", _session("ACME\\alice", "2b"), 60)  # replaced, not doubled
    assert await store.keys_for_user("ACME\\alice") == [
        "a|ACME\\alice",
        "b|ACME\\alice",
        "c|ACME\\alice",
    ]
    await store.delete("a|ACME\\alice")
    await store.delete("c|ACME\\alice")
    assert await store.keys_for_user("ACME\\alice") == ["b|ACME\\alice"]
    await store.set("d|ACME\\alice", _session("ACME\\alice", "4"), 60)
    assert await store.keys_for_user("ACME\\alice") == ["b|ACME\\alice", "d|ACME\\alice"]
    await store.delete("b|ACME\\alice")
    await store.delete("d|ACME\\alice")
    assert await store.keys_for_user("ACME\\alice") == []
    assert store._by_user == {}


async def test_a_key_moved_to_another_user_leaves_the_first_users_index() -> None:
    store = MemorySessionStore()
    await store.set("k", _session("ACME\\alice", "1"), 60)
    await store.set("k", _session("ACME\\bob", "2"), 60)
    assert await store.keys_for_user("ACME\\alice") == []
    assert await store.keys_for_user("ACME\\bob") == ["k"]


async def test_eviction_keeps_the_index_exact() -> None:
    store = MemorySessionStore(max_entries=2)
    for target in ("a", "b", "c"):
        await store.set(f"{target}|ACME\\alice", _session("ACME\\alice", target), 60)
    assert await store.keys_for_user("ACME\\alice") == ["b|ACME\\alice", "c|ACME\\alice"]
