"""`SessionManager`: one Qlik session per user, obtained once, shared, renewed when Qlik drops it.

Single-flight works at two levels: inside a process, concurrent requests of a user share one login
task (so a failed login reaches every waiter and nothing is cached); across processes, the store's
lock makes the second process wait and then read the first one's session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .stores.base import QlikSession, SessionStore

__all__ = ["SessionManager"]

logger = logging.getLogger("qlik_sso_middleware.sessions")

Login = Callable[[], Awaitable[QlikSession]]


class SessionManager:
    """Cache-aside access to the store with single-flight logins.

    `ttl` is the sliding lifetime given to the store; keep it a margin under the virtual proxy's
    session inactivity timeout so we never present a cookie Qlik has already forgotten.
    """

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self._inflight: dict[str, asyncio.Task[QlikSession]] = {}

    async def get(self, key: str) -> QlikSession | None:
        return await self.store.get(key)

    async def obtain(self, key: str, login: Login, ttl: float) -> QlikSession:
        """The cached session for `key`, or a new one from `login` (one login per key at a time)."""
        session = await self.store.get(key)
        if session is not None:
            return session
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._login(key, login, ttl))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        # shield: a browser that goes away must not cancel the login other requests wait for.
        return await asyncio.shield(task)

    async def _login(self, key: str, login: Login, ttl: float) -> QlikSession:
        async with self.store.lock(key):
            # Another process may have logged the user in while we waited for the lock.
            session = await self.store.get(key)
            if session is not None:
                return session
            session = await login()
            await self.store.set(key, session, ttl)
            return session

    async def invalidate(self, key: str, stale: QlikSession) -> None:
        """Drop `stale` unless a concurrent request already replaced it with a fresh session."""
        current = await self.store.get(key)
        if current is not None and current.cookie_value == stale.cookie_value:
            await self.store.delete(key)

    async def drop_user(self, user_key: str, key_prefix: str) -> list[tuple[str, QlikSession]]:
        """Remove every cached session of `user_key` whose key starts with `key_prefix`."""
        dropped = []
        for key in await self.store.keys_for_user(user_key):
            if key.startswith(key_prefix):
                session = await self.store.delete(key)
                if session is not None:
                    dropped.append((key, session))
        return dropped
