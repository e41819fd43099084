"""`MemorySessionStore`: the default, per-process session store (bounded LRU, sliding TTL)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..errors import ConfigurationError, StoreUnavailable
from .base import QlikSession

__all__ = ["MemorySessionStore"]


@dataclass(slots=True)
class _Entry:
    session: QlikSession
    ttl: float
    expires_at: float


class MemorySessionStore:
    """Sessions in a dict, for one process.

    Bounded to `max_entries` (least recently used evicted first) so a flood of distinct users cannot
    grow memory without limit. `clock` is injectable (seconds, monotonic) for tests.
    `lock` waits at most `lock_wait` seconds, then raises `StoreUnavailable` (the `SessionStore`
    contract), so a hung login cannot queue every later request of its user forever.
    """

    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        lock_wait: float = 15.0,
    ) -> None:
        if max_entries < 1:
            raise ConfigurationError("must be at least 1", field="max_entries")
        if isinstance(lock_wait, bool) or not isinstance(lock_wait, int | float) or lock_wait < 0:
            raise ConfigurationError("must be a number of seconds >= 0", field="lock_wait")
        self._lock_wait = float(lock_wait)
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # user -> their key, or a set once they have several (one per Qlik target): a set per user
        # would cost ~200 bytes, a quarter of a cached session (benchmarks/micro.py).
        self._by_user: dict[str, str | set[str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> QlikSession | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock()
        if entry.expires_at <= now:
            self._remove(key)
            return None
        entry.expires_at = now + entry.ttl
        self._entries.move_to_end(key)
        return entry.session

    async def set(self, key: str, session: QlikSession, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        if key in self._entries:
            self._remove(key)
        self._entries[key] = _Entry(session, ttl, self._clock() + ttl)
        user = session.user_key
        current = self._by_user.get(user)
        if current is None:
            self._by_user[user] = key
        elif isinstance(current, set):
            current.add(key)
        elif current != key:
            self._by_user[user] = {current, key}
        while len(self._entries) > self._max_entries:
            oldest = next(iter(self._entries))
            self._remove(oldest)

    async def delete(self, key: str) -> QlikSession | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._remove(key)
        return entry.session

    async def keys_for_user(self, user_key: str) -> list[str]:
        now = self._clock()
        live = []
        indexed = self._by_user.get(user_key, ())
        for key in [indexed] if isinstance(indexed, str) else list(indexed):
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at > now:
                live.append(key)
        return sorted(live)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        try:
            try:
                async with asyncio.timeout(self._lock_wait):
                    await lock.acquire()
            except TimeoutError:
                raise StoreUnavailable(
                    f"login lock not acquired within lock_wait={self._lock_wait:g}s"
                ) from None
            try:
                yield
            finally:
                lock.release()
        finally:
            # Drop idle locks so the dict stays bounded by the number of in-flight logins.
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._locks.pop(key, None)

    async def aclose(self) -> None:
        self._entries.clear()
        self._by_user.clear()

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        user = entry.session.user_key
        keys = self._by_user.get(user)
        if keys == key:
            del self._by_user[user]
        elif isinstance(keys, set):
            keys.discard(key)
            if len(keys) == 1:
                self._by_user[user] = next(iter(keys))
            elif not keys:
                del self._by_user[user]
