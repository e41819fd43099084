"""`RedisSessionStore` when Redis is away: `StoreUnavailable`, then recovery when it returns.

Each test runs its own `redis-server` (or none), so stopping it disturbs nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from qlik_sso_middleware.errors import StoreUnavailable
from qlik_sso_middleware.stores._sealing import Sealer
from qlik_sso_middleware.stores.redis import RedisSessionStore
from tests.redis_server import RedisServer, free_port, require_redis_server
from tests.stores.store_harness import make_session
from tests.waiting import eventually

KEY = "srv|vp|DIR\\alice"
SEALING_KEY = Sealer.generate_key()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    redis = RedisServer(require_redis_server())
    try:
        redis.start()
        yield redis
    finally:
        redis.close()


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisSessionStore]:
    # 1 s (with the store's one retry, 2 s) before a hung Redis counts as down: long enough that
    # a healthy one on a loaded machine never does, short enough to keep the hung tests quick.
    store = RedisSessionStore(
        server.url,
        sealing_keys=[SEALING_KEY],
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        lock_wait=5,
    )
    yield store
    await store.aclose()


async def test_nothing_listening_is_store_unavailable_for_every_operation() -> None:
    port = free_port()
    store = RedisSessionStore(
        f"redis://:pw-hunter2@127.0.0.1:{port}/0",
        sealing_keys=[SEALING_KEY],
        socket_connect_timeout=0.5,
    )
    try:
        operations = {
            "get": store.get(KEY),
            "set": store.set(KEY, make_session(), ttl=10),
            "delete": store.delete(KEY),
            "keys_for_user": store.keys_for_user("DIR\\alice"),
        }
        for name, operation in operations.items():
            with pytest.raises(StoreUnavailable) as info:
                await operation
            message = str(info.value)
            assert f"127.0.0.1:{port}" in message, name
            assert "hunter2" not in message
            assert info.value.status_code == 503
        with pytest.raises(StoreUnavailable):
            async with store.lock(KEY):
                pytest.fail("entered a lock without Redis")
    finally:
        await store.aclose()


async def test_hung_redis_times_out_then_recovers(
    server: RedisServer, store: RedisSessionStore
) -> None:
    await store.set(KEY, make_session(), ttl=100)
    server.pause()
    try:
        with pytest.raises(StoreUnavailable, match="unavailable"):
            await store.get(KEY)
        with pytest.raises(StoreUnavailable):
            await store.set(KEY, make_session(), ttl=100)
    finally:
        server.resume()
    assert await store.get(KEY) == make_session()


async def test_restarted_redis_is_used_again_without_reset(
    server: RedisServer, store: RedisSessionStore
) -> None:
    await store.set(KEY, make_session(), ttl=100)
    server.stop()
    with pytest.raises(StoreUnavailable):
        await store.get(KEY)
    with pytest.raises(StoreUnavailable):
        await store.keys_for_user("DIR\\alice")
    server.start()  # same port, empty (no persistence)
    assert await store.get(KEY) is None
    await store.set(KEY, make_session(value="after-restart"), ttl=100)
    assert await store.get(KEY) == make_session(value="after-restart")
    assert await store.keys_for_user("DIR\\alice") == [KEY]
    async with store.lock(KEY):
        pass


async def test_idle_connections_survive_a_restart(
    server: RedisServer, store: RedisSessionStore
) -> None:
    # Pooled connections to the old process are dead; the first command after the restart must
    # still succeed (one reconnecting retry), not fail once per pooled connection.
    await asyncio.gather(*(store.get(f"k{i}") for i in range(5)))
    server.stop()
    server.start()
    for i in range(5):
        assert await store.get(f"k{i}") is None


async def test_losing_redis_inside_a_lock_does_not_mask_the_body(
    server: RedisServer, store: RedisSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="qlik_sso_middleware.stores.redis"):
        async with store.lock(KEY):
            server.stop()
    assert any("expires by itself" in r.getMessage() for r in caplog.records)
    server.start()
    async with store.lock(KEY):  # the new, empty Redis has no stale lock
        pass


async def test_exhausted_pool_is_store_unavailable_not_a_hang(server: RedisServer) -> None:
    store = RedisSessionStore(
        server.url,
        sealing_keys=[SEALING_KEY],
        max_connections=1,
        pool_timeout=0.2,
        socket_timeout=60,  # the first get waits for the resumed server, never for this
    )
    try:
        await store.get(KEY)  # one pooled connection exists
        server.pause()
        # The first get holds the only connection (waiting on the hung server); the second
        # waits for the pool and gives up after pool_timeout, well before socket_timeout.
        first = asyncio.create_task(store.get(KEY))
        pool = store._client.connection_pool  # type: ignore[union-attr]
        await eventually(lambda: bool(pool._in_use_connections), "the first get's connection")
        with pytest.raises(StoreUnavailable, match="No connection available"):
            await store.get(KEY)
        server.resume()
        assert await first is None
    finally:
        server.resume()
        await store.aclose()


async def test_cancellation_is_not_turned_into_store_unavailable(
    server: RedisServer, store: RedisSessionStore
) -> None:
    server.pause()
    try:
        task = asyncio.create_task(store.get(KEY))
        # Cancelled while it waits on the hung server (its command is out), long before the
        # socket timeout would turn the wait into StoreUnavailable.
        pool = store._client.connection_pool  # type: ignore[union-attr]
        await eventually(lambda: bool(pool._in_use_connections), "the get to be under way")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        server.resume()
    assert await store.get(KEY) is None
