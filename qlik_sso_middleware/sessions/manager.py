"""`SessionManager`: the store seen as a cache of Qlik sessions, with single-flight logins.

Single-flight works at two levels: inside a process, concurrent requests of a user share one login
task (so a failed login reaches every waiter and nothing is cached); across processes, the store's
lock makes the second process wait and then read the first one's session. Logins of all users
together are bounded by login slots, so a flood of new users cannot take every connection to Qlik
from the users who already have a session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from ..errors import ConfigurationError, TooManyLogins
from ..stores.base import QlikSession, SessionStore

__all__ = ["SessionManager"]

Login = Callable[[], Awaitable[QlikSession]]
Retire = Callable[[QlikSession], Awaitable[None]]
#: A session's store TTL: fixed, or read from the session a login made (a token's expiry).
Ttl = float | Callable[[QlikSession], float]
Usable = Callable[[QlikSession], bool]


class SessionManager:
    """Cache-aside access to the store with single-flight logins.

    `ttl` is the sliding lifetime given to the store; keep it a margin under the virtual proxy's
    session inactivity timeout so we never present a cookie Qlik has already forgotten.
    `max_concurrent_logins` Qlik logins may run at once; one that waits `login_wait` seconds for
    a slot fails with `TooManyLogins` (503).
    """

    def __init__(
        self, store: SessionStore, *, max_concurrent_logins: int = 16, login_wait: float = 10.0
    ) -> None:
        if (
            isinstance(max_concurrent_logins, bool)
            or not isinstance(max_concurrent_logins, int)
            or max_concurrent_logins < 1
        ):
            raise ConfigurationError("must be an integer >= 1", field="max_concurrent_logins")
        if (
            isinstance(login_wait, bool)
            or not isinstance(login_wait, int | float)
            or login_wait <= 0
        ):
            raise ConfigurationError("must be a positive number of seconds", field="login_wait")
        self.store = store
        self.login_wait = float(login_wait)
        self._login_slots = asyncio.Semaphore(max_concurrent_logins)
        self._inflight: dict[str, asyncio.Task[QlikSession]] = {}

    @contextlib.asynccontextmanager
    async def login_slot(self) -> AsyncIterator[None]:
        """Hold one of the login slots while a Qlik login runs (`TooManyLogins` after the wait)."""
        try:
            async with asyncio.timeout(self.login_wait):
                await self._login_slots.acquire()
        except TimeoutError:
            raise TooManyLogins(
                f"no login slot free within login_wait={self.login_wait:g}s"
            ) from None
        try:
            yield
        finally:
            self._login_slots.release()

    async def get(self, key: str) -> QlikSession | None:
        return await self.store.get(key)

    async def obtain(
        self,
        key: str,
        login: Login,
        ttl: Ttl,
        *,
        fingerprint: str = "",
        retire: Retire | None = None,
        usable: Usable | None = None,
    ) -> QlikSession:
        """The cached session for `key` if it was made for `fingerprint` (and `usable` accepts
        it), else a new one from `login` (one login per key and fingerprint at a time, across
        processes sharing the store).

        A cached session made for other attributes is replaced, then handed to `retire` (which
        ends it at Qlik) by the one caller that replaced it. `usable` rejects a cached credential
        that is about to expire (a Qlik Cloud access token); `ttl` may be read from the new one.
        """

        def fits(session: QlikSession | None) -> bool:
            return (
                session is not None
                and session.fingerprint == fingerprint
                and (usable is None or usable(session))
            )

        session = await self.store.get(key)
        if session is not None and fits(session):
            return session
        flight = f"{key}\x00{fingerprint}"
        task = self._inflight.get(flight)
        if task is None:
            task = asyncio.create_task(self._login(key, login, ttl, fits, retire))
            self._inflight[flight] = task
            task.add_done_callback(lambda _t: self._inflight.pop(flight, None))
        # shield: a browser that goes away must not cancel the login other requests wait for.
        return await asyncio.shield(task)

    async def _login(
        self,
        key: str,
        login: Login,
        ttl: Ttl,
        fits: Callable[[QlikSession | None], bool],
        retire: Retire | None,
    ) -> QlikSession:
        async with self.store.lock(key):
            # Another process may have logged the user in while we waited for the lock.
            current = await self.store.get(key)
            if current is not None and fits(current):
                return current
            session = await login()
            await self.store.set(key, session, ttl(session) if callable(ttl) else ttl)
        if current is not None and retire is not None:
            await retire(current)  # made for other attributes: replaced, so ended
        return session

    async def replace(
        self, key: str, stale: QlikSession, fresh: QlikSession, ttl: float
    ) -> QlikSession:
        """Cache `fresh` in place of `stale`, unless another session replaced `stale` first.

        Returns the session now cached: `fresh`, or the one that came first (then `fresh` is
        spare and the caller ends it).
        """
        async with self.store.lock(key):
            current = await self.store.get(key)
            if current is None or current.cookie_value in (stale.cookie_value, fresh.cookie_value):
                await self.store.set(key, fresh, ttl)
                return fresh
        return current

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
