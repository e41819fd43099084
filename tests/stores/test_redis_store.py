"""`RedisSessionStore` beyond the contract: sealing at rest, rotation, TTLs in Redis, instances."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable

import pytest
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from qlik_sso_middleware.errors import ConfigurationError, StoreUnavailable
from qlik_sso_middleware.stores._sealing import Sealer
from qlik_sso_middleware.stores.base import SessionStore
from qlik_sso_middleware.stores.redis import RedisSessionStore
from tests.redis_server import RedisSentinel, RedisServer, require_redis_server
from tests.stores.store_harness import RedisHarness, make_session
from tests.waiting import eventually

KEY = "qlik.example:443|hdr|DIR\\alice"
SEALING_LOGGER = "qlik_sso_middleware.stores._sealing"


def as_bytes(value: object) -> bytes:
    assert isinstance(value, bytes), value
    return value


async def session_key_of(harness: RedisHarness, kind: str = "s") -> bytes:
    keys = [k for k in await harness.keys() if k.startswith(f"{harness.prefix}{kind}:".encode())]
    assert len(keys) == 1, keys
    return keys[0]


async def test_redis_holds_neither_the_cookie_nor_the_user_name(
    redis_harness: RedisHarness,
) -> None:
    store = redis_harness.make()
    await store.set(KEY, make_session(value="cookie-secret-1"), ttl=100)
    raw = redis_harness.raw
    dump = b""
    for key in await redis_harness.keys():
        dump += key
        if await raw.type(key) == b"hash":
            for field, value in (await raw.hgetall(key)).items():
                dump += as_bytes(field) + as_bytes(value)
        else:
            dump += as_bytes(await raw.get(key))
    assert dump
    for secret in (b"cookie-secret-1", b"alice", b"qlik.example", b"X-Qlik-Session"):
        assert secret not in dump


async def test_ttl_is_set_in_redis_and_slid_by_get(redis_harness: RedisHarness) -> None:
    store = redis_harness.make()
    await store.set(KEY, make_session(), ttl=100)
    rkey = await session_key_of(redis_harness)
    raw = redis_harness.raw
    assert 0 < await raw.pttl(rkey) <= 100_000
    await raw.pexpire(rkey, 5_000)
    assert await store.get(KEY) is not None
    assert await raw.pttl(rkey) > 5_000
    index = await session_key_of(redis_harness, "u")
    assert await raw.pttl(index) >= await raw.pttl(rkey)


@pytest.mark.parametrize("damage", ["tamper", "truncate", "move"])
async def test_damaged_values_are_misses_logged_once(
    redis_harness: RedisHarness, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    store = redis_harness.make()
    raw = redis_harness.raw
    await store.set(KEY, make_session(), ttl=100)
    rkey = await session_key_of(redis_harness)
    value = as_bytes(await raw.get(rkey))
    target = KEY
    if damage == "tamper":
        await raw.set(rkey, value[:-1] + bytes([value[-1] ^ 1]), px=100_000)
    elif damage == "truncate":
        await raw.set(rkey, value[:12], px=100_000)
    else:  # copy alice's sealed session under bob's key: it must not open there
        target = "qlik.example:443|hdr|DIR\\bob"
        await store.set(target, make_session("DIR\\bob", "bob-cookie"), ttl=100)
        bob_key = next(k for k in await redis_harness.keys() if k != rkey and b":s:" in k)
        await raw.set(bob_key, value, px=100_000)
    with caplog.at_level(logging.WARNING, logger=SEALING_LOGGER):
        for _ in range(3):
            assert await store.get(target) is None
    records = [r for r in caplog.records if r.name == SEALING_LOGGER]
    assert len(records) == 1
    assert "alice" not in records[0].getMessage()


async def test_value_sealed_by_unknown_key_is_a_miss(redis_harness: RedisHarness) -> None:
    writer = redis_harness.make()
    await writer.set(KEY, make_session(), ttl=100)
    stranger = redis_harness.make(sealing_keys=[Sealer.generate_key()])
    assert await stranger.get(KEY) is None
    assert await stranger.delete(KEY) is None  # gone, though unreadable
    assert await writer.get(KEY) is None


async def test_key_rotation(redis_harness: RedisHarness) -> None:
    old_key, new_key = redis_harness.sealing_key, Sealer.generate_key()
    old = redis_harness.make(sealing_keys=[old_key])
    rotating = redis_harness.make(sealing_keys=[new_key, old_key])
    rotated = redis_harness.make(sealing_keys=[new_key])
    await old.set("a", make_session(value="sealed-by-old"), ttl=100)
    assert await rotating.get("a") == make_session(value="sealed-by-old")
    assert await rotated.get("a") is None  # the old key was removed
    await rotating.set("b", make_session(value="sealed-by-new"), ttl=100)
    assert await rotated.get("b") == make_session(value="sealed-by-new")
    assert await rotating.keys_for_user("DIR\\alice") == ["a", "b"]


async def test_instances_share_sessions_index_and_logout(redis_harness: RedisHarness) -> None:
    one, two = redis_harness.make(), redis_harness.make()
    await one.set("srv1|vp|DIR\\alice", make_session(), ttl=100)
    await two.set("srv2|vp|DIR\\alice", make_session(), ttl=100)
    assert await two.get("srv1|vp|DIR\\alice") == make_session()
    keys = await two.keys_for_user("DIR\\alice")
    assert keys == ["srv1|vp|DIR\\alice", "srv2|vp|DIR\\alice"]
    for key in keys:  # "log out everywhere" from instance two
        assert await two.delete(key) == make_session()
    assert await one.get("srv1|vp|DIR\\alice") is None
    assert await one.keys_for_user("DIR\\alice") == []


async def test_keys_for_user_prunes_dead_index_entries(redis_harness: RedisHarness) -> None:
    store = redis_harness.make()
    await store.set("a", make_session(), ttl=100)
    await store.set("b", make_session(), ttl=100)
    await store.delete("a")
    index = await session_key_of(redis_harness, "u")
    assert await redis_harness.raw.hlen(index) == 2  # delete leaves the entry (see module doc)
    assert await store.keys_for_user("DIR\\alice") == ["b"]
    assert await redis_harness.raw.hlen(index) == 1


async def test_single_flight_across_instances(redis_harness: RedisHarness) -> None:
    stores = [redis_harness.make() for _ in range(4)]
    logins = 0

    async def request(store: SessionStore) -> str:
        nonlocal logins
        async with store.lock(KEY):
            session = await store.get(KEY)
            if session is None:
                logins += 1
                await asyncio.sleep(0.02)
                session = make_session(value=f"login-{logins}")
                await store.set(KEY, session, ttl=100)
        return session.cookie_value

    async with asyncio.timeout(30):
        values = await asyncio.gather(*(request(stores[i % 4]) for i in range(40)))
    assert logins == 1
    assert set(values) == {"login-1"}


async def test_lock_held_by_another_instance_times_out(redis_harness: RedisHarness) -> None:
    holder, waiter = redis_harness.make(), redis_harness.make(lock_wait=0.05)
    async with holder.lock(KEY):
        lock_key = await session_key_of(redis_harness, "l")
        assert 0 < await redis_harness.raw.pttl(lock_key) <= 10_000  # default lock_timeout
        with pytest.raises(StoreUnavailable, match="lock_wait"):
            async with waiter.lock(KEY):
                pytest.fail("entered a lock held by another instance")
    assert await redis_harness.keys() == []  # released by its owner
    async with waiter.lock(KEY):
        pass


async def test_cluster_store_names_a_node(redis_cluster_harness: RedisHarness) -> None:
    store = redis_cluster_harness.make()
    assert f"cluster via {redis_cluster_harness.cluster_node}" in repr(store)


async def test_sentinel_client_is_followed_to_the_master() -> None:
    master = RedisServer(require_redis_server())
    try:
        master.start()
        sentinel = RedisSentinel(require_redis_server(), master)
    except BaseException:
        master.close()
        raise
    sentinels = Sentinel([("127.0.0.1", sentinel.port)], socket_timeout=2)  # type: ignore[no-untyped-call]
    client = sentinels.master_for("mymaster")
    try:
        store = RedisSessionStore(client, sealing_keys=[Sealer.generate_key()])
        assert "Sentinel service 'mymaster'" in repr(store)
        await store.set(KEY, make_session(), ttl=100)
        assert await store.get(KEY) == make_session()
        assert await store.keys_for_user("DIR\\alice") == [KEY]
        async with asyncio.timeout(30):
            async with store.lock(KEY):
                pass
        await store.aclose()
    finally:
        await client.aclose()
        sentinel.close()
        master.close()


async def test_passed_in_client_is_used_and_left_open(redis_harness: RedisHarness) -> None:
    client = aioredis.Redis.from_url(redis_harness.url)
    try:
        store = RedisSessionStore(
            client, sealing_keys=[redis_harness.sealing_key], key_prefix=redis_harness.prefix
        )
        await store.set(KEY, make_session(), ttl=100)
        assert "127.0.0.1" in repr(store)
        await store.aclose()
        assert await client.ping()
        assert await redis_harness.make().get(KEY) == make_session()
    finally:
        await client.aclose()


async def test_aclose_closes_the_pool_it_created(redis_harness: RedisHarness) -> None:
    name = f"qlik-sso-test-{os.getpid()}-{id(redis_harness)}"
    store = RedisSessionStore(
        f"{redis_harness.url}?client_name={name}",
        sealing_keys=[redis_harness.sealing_key],
        key_prefix=redis_harness.prefix,
        max_connections=3,
    )

    async def own_connections() -> int:
        clients = await redis_harness.raw.client_list()
        return sum(1 for c in clients if c.get("name") == name)

    await asyncio.gather(*(store.get(f"k{i}") for i in range(30)))
    assert 1 <= await own_connections() <= 3  # bounded pool
    await store.aclose()
    # The server notices closed sockets asynchronously.
    await eventually(lambda: _none(own_connections()), "Redis to see the connections closed")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"sealing_keys": []}, "sealing_keys"),
        ({"key_prefix": "app:{x}:"}, "key_prefix"),
        ({"lock_timeout": 0}, "lock_timeout"),
        ({"lock_retry_interval": -1}, "lock_retry_interval"),
        ({"lock_wait": "5"}, "lock_wait"),
        ({"max_connections": 0}, "max_connections"),
        ({"socket_timeout": 0}, "socket_timeout"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, object], field: str) -> None:
    options.setdefault("sealing_keys", [Sealer.generate_key()])
    with pytest.raises(ConfigurationError) as info:
        RedisSessionStore("redis://127.0.0.1:1", **options)  # type: ignore[arg-type]
    assert info.value.field == field


def test_sealing_keys_are_mandatory() -> None:
    with pytest.raises(ConfigurationError, match=r"Sealer\.generate_key") as info:
        RedisSessionStore("redis://127.0.0.1:1")
    assert info.value.field == "sealing_keys"


async def test_pool_options_with_a_client_are_refused() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1")
    try:
        with pytest.raises(ConfigurationError) as info:
            RedisSessionStore(client, sealing_keys=[Sealer.generate_key()], socket_timeout=1)
        assert info.value.field == "socket_timeout"
    finally:
        await client.aclose()


def test_bad_url_error_does_not_echo_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisSessionStore("http://user:hunter2@127.0.0.1/", sealing_keys=[Sealer.generate_key()])
    assert info.value.field == "url"
    assert "hunter2" not in str(info.value)


async def _none(count: Awaitable[int]) -> bool:
    return await count == 0
