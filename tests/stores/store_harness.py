"""Store harnesses: one per store kind, so the contract suite is written once.

A harness makes stores of its kind that share one backend (several "instances") and can move time
forward: the memory harness moves its injected clock, the Redis harness moves its injected clock
and shortens the remaining PTTL of every key under its unique prefix (a key whose TTL runs out is
deleted, exactly as Redis would expire it). No test sleeps for a TTL.
"""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any, Protocol

import redis.asyncio as aioredis

from qlik_sso_middleware.stores.base import QlikSession, SessionStore
from qlik_sso_middleware.stores.memory import MemorySessionStore
from qlik_sso_middleware.stores.redis import RedisSessionStore

__all__ = ["FakeClock", "MemoryHarness", "RedisHarness", "StoreHarness", "make_session"]


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make_session(user_key: str = "DIR\\alice", value: str = "cookie-secret-1") -> QlikSession:
    return QlikSession(
        cookie_name="X-Qlik-Session-HTTP",
        cookie_value=value,
        user_key=user_key,
        created_at=1_700_000_000.25,
    )


class StoreHarness(Protocol):
    kind: str
    clock: FakeClock

    def make(self, **options: Any) -> SessionStore:
        """A new store; Redis stores of one harness share a backend like separate processes."""

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass for TTLs and lock expiry."""

    async def close(self) -> None: ...


class MemoryHarness:
    kind = "memory"

    def __init__(self) -> None:
        self.clock = FakeClock()
        self._stores: list[MemorySessionStore] = []

    def make(self, **options: Any) -> SessionStore:
        options.pop("lock_retry_interval", None)
        if "lock_timeout" in options:
            # A test bug, not a property of the machine: such tests take `shared_harness`.
            raise TypeError("the memory store has no lock_timeout: its lock dies with its owner")
        store = MemorySessionStore(clock=self.clock, **options)
        self._stores.append(store)
        return store

    async def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    async def close(self) -> None:
        for store in self._stores:
            await store.aclose()


class RedisHarness:
    kind = "redis"

    def __init__(self, url: str, *, cluster_node: str | None = None) -> None:
        self.url = url
        self.cluster_node = cluster_node
        self.clock = FakeClock()
        self.prefix = f"qlik-sso-test:{uuid.uuid4().hex}:"
        self.sealing_key = base64.b64encode(os.urandom(32)).decode()
        self.raw: aioredis.Redis | aioredis.RedisCluster = (
            self._cluster_client() if cluster_node else aioredis.Redis.from_url(url)
        )
        self._stores: list[SessionStore] = []
        self._clients: list[aioredis.RedisCluster] = []

    def _cluster_client(self) -> aioredis.RedisCluster:
        assert self.cluster_node is not None
        host, port = self.cluster_node.rsplit(":", 1)
        return aioredis.RedisCluster(host=host, port=int(port))

    def make(self, **options: Any) -> SessionStore:
        options.setdefault("lock_retry_interval", 0.01)
        options.setdefault("sealing_keys", [self.sealing_key])
        target: str | aioredis.RedisCluster = self.url
        if self.cluster_node:
            # Each store gets its own client, like separate processes would.
            target = self._cluster_client()
            self._clients.append(target)
        store = RedisSessionStore(target, key_prefix=self.prefix, clock=self.clock, **options)
        self._stores.append(store)
        return store

    async def keys(self) -> list[bytes]:
        return [key async for key in self.raw.scan_iter(match=f"{self.prefix}*")]

    async def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        for key in await self.keys():
            remaining = await self.raw.pttl(key)
            if remaining < 0:
                continue
            left = remaining - round(seconds * 1000)
            if left <= 0:
                await self.raw.delete(key)
            else:
                await self.raw.pexpire(key, left)

    async def close(self) -> None:
        for store in self._stores:
            await store.aclose()
        for client in self._clients:
            await client.aclose()
        for key in await self.keys():  # one by one: keys of a cluster live on several nodes
            await self.raw.delete(key)
        await self.raw.aclose()
