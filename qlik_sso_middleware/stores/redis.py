"""`RedisSessionStore`: one Qlik session per user shared by every app instance (extra `[redis]`).

Several app processes behind a load balancer must share one Qlik session per user: otherwise each
process logs the user in again and Qlik's cap of five parallel sessions per user is hit. This store
keeps the sessions in Redis, sealed (`_sealing.Sealer`), with a distributed single-flight lock and a
per-user index for "log this user out everywhere".

Layout (`P` is `key_prefix`, `d(x)` a SHA-256 digest, so user names never appear in key names)::

    P s:{d(key)}        string  "<ttl ms>:" + sealed session     PX ttl, slid by every get
    P l:{d(key)}        string  random lock token                PX lock_timeout
    P u:{d(user_key)}   hash    d(key) -> sealed key             PX >= 2 * ttl, extended

Every command touches one key, so the layout works unchanged on Redis Cluster; the braces are hash
tags that keep a session and its lock on one slot. Requires Redis >= 6.2 (GETDEL).

Index entries are removed lazily (by `keys_for_user`, with a compare-and-delete) rather than by
`delete`, so a `set` racing a `delete` can never leave a live session unindexed.

Failure behaviour: any Redis error or timeout becomes `StoreUnavailable` naming the server (never a
password); nothing falls back to per-process sessions. The client's pool reconnects by itself once
Redis is back, so there is no state to reset.

Longer than most modules on purpose: one class carries the whole store contract (get, set,
delete, the per-user index, the lock) against plain Redis, Sentinel and Cluster; what goes on the
wire (Lua scripts, encoding) is in `_redis_wire.py`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..errors import ConfigurationError, StoreUnavailable
from ._redis_wire import (
    GET_SLIDING,
    INDEX_PRUNE,
    INDEX_TOUCH,
    RELEASE,
    RedisClient,
    decode_session,
    describe_client,
    describe_url,
    encode_session,
    key_digest,
)
from ._sealing import Sealer
from .base import QlikSession

__all__ = ["RedisSessionStore", "Sealer"]

logger = logging.getLogger(__name__)


_TOUCH_MEMORY = 10_000


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"must be a number, not {type(value).__name__}", field=name)
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError("must be positive", field=name)
    return float(value)


class RedisSessionStore:
    """Sessions in Redis, sealed, shared by every process that uses the same Redis and prefix.

    `url_or_client` is a `redis://`, `rediss://` or `unix://` URL (the store then owns a bounded,
    blocking pool of `max_connections` (default 50), waiting up to `pool_timeout` (5 s) for a free
    connection, with `socket_timeout` and `socket_connect_timeout` (2 s each) and one immediate
    retry) or a ready `redis.asyncio.Redis` (for example `Sentinel.master_for(...)`) or
    `RedisCluster`, which the caller configures and closes. The pool options apply only to a URL.

    `sealing_keys` (newest first, 32 bytes or base64 each, or a `Sealer`) is mandatory: a shared
    Redis must never yield a live Qlik session. All instances must share the key list; rotate by
    prepending a key everywhere, then removing the old one after one session TTL.

    Lock: `SET NX PX lock_timeout` with a random token, polled every `lock_retry_interval` for up
    to `lock_wait` seconds, then `StoreUnavailable`. Hazard: a login that outlives `lock_timeout`
    loses its lock and a second login may start, so keep `lock_timeout` above the Qlik login
    timeout.

    `clock` (monotonic seconds) is only for local bookkeeping and is injectable for tests; Redis
    keeps its own time for TTLs.
    """

    def __init__(
        self,
        url_or_client: str | RedisClient,
        *,
        sealing_keys: Iterable[bytes | str] | Sealer | None = None,
        key_prefix: str = "qlik-sso:",
        lock_timeout: float = 10.0,
        lock_retry_interval: float = 0.05,
        lock_wait: float = 15.0,
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
        max_connections: int | None = None,
        pool_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if sealing_keys is None:
            raise ConfigurationError(
                "is required: values in a shared Redis must be sealed; "
                "generate a key with Sealer.generate_key()",
                field="sealing_keys",
            )
        self._sealer = sealing_keys if isinstance(sealing_keys, Sealer) else Sealer(sealing_keys)
        if not isinstance(key_prefix, str) or "{" in key_prefix or "}" in key_prefix:
            raise ConfigurationError(
                "must be a string without '{' or '}' (they are Redis Cluster hash tags)",
                field="key_prefix",
            )
        self._prefix = key_prefix
        self._lock_ms = max(1, round(_positive("lock_timeout", lock_timeout) * 1000))
        self._lock_retry = _positive("lock_retry_interval", lock_retry_interval)
        self._lock_wait = _positive("lock_wait", lock_wait, allow_zero=True)
        self._clock = clock
        pool_options = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "max_connections": max_connections,
            "pool_timeout": pool_timeout,
        }
        self._client: RedisClient
        if isinstance(url_or_client, str):
            self._client = self._connect(url_or_client, pool_options)
            self._owns_client = True
            self._target = describe_url(url_or_client)
        elif isinstance(url_or_client, aioredis.Redis | RedisCluster):
            for name, value in pool_options.items():
                if value is not None:
                    raise ConfigurationError(
                        "applies only when a URL is given; configure the client instead",
                        field=name,
                    )
            self._client = url_or_client
            self._owns_client = False
            self._target = describe_client(url_or_client)
        else:
            raise ConfigurationError(
                "must be a redis:// URL, a redis.asyncio.Redis or a RedisCluster, "
                f"not {type(url_or_client).__name__}",
                field="url_or_client",
            )
        self._get_sliding = self._client.register_script(GET_SLIDING)
        self._index_touch = self._client.register_script(INDEX_TOUCH)
        self._index_prune = self._client.register_script(INDEX_PRUNE)
        self._release = self._client.register_script(RELEASE)
        self._local_locks: dict[str, asyncio.Lock] = {}
        # index key -> (clock time, ttl ms) of this process's last index extension (see `get`).
        self._touched: OrderedDict[str, tuple[float, int]] = OrderedDict()

    @staticmethod
    def _connect(url: str, options: dict[str, Any]) -> aioredis.Redis:
        timeouts = {
            name: default if options[name] is None else _positive(name, options[name])
            for name, default in (
                ("pool_timeout", 5.0),
                ("socket_timeout", 2.0),
                ("socket_connect_timeout", 2.0),
            )
        }
        max_connections = options["max_connections"]
        if max_connections is None:
            max_connections = 50
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ConfigurationError("must be an integer", field="max_connections")
        if max_connections < 1:
            raise ConfigurationError("must be at least 1", field="max_connections")
        try:
            pool = BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=timeouts["pool_timeout"],
                socket_timeout=timeouts["socket_timeout"],
                socket_connect_timeout=timeouts["socket_connect_timeout"],
                # One immediate retry heals a connection that died while idle (Redis restarted);
                # redis-py's default (10 retries with backoff) would turn an outage into a hang.
                retry=Retry(NoBackoff(), 1),
            )
        except (ValueError, TypeError):
            # The URL may hold a password: do not echo it or the parser's message about it.
            raise ConfigurationError(
                "is not a valid redis://, rediss:// or unix:// URL", field="url"
            ) from None
        return aioredis.Redis(connection_pool=pool)

    def __repr__(self) -> str:
        return f"RedisSessionStore({self._target!r}, key_prefix={self._prefix!r})"

    # -- key names ---------------------------------------------------------------------------

    def _session_key(self, digest: str) -> str:
        return f"{self._prefix}s:{{{digest}}}"

    def _index_key(self, user_key: str) -> str:
        return f"{self._prefix}u:{{{key_digest(user_key)}}}"

    # -- Redis calls ---------------------------------------------------------------------------

    async def _run(self, result: Any) -> Any:
        """Await a redis-py call, translating every backend failure into `StoreUnavailable`."""
        try:
            # redis-py's shared sync/async typing says "Awaitable[T] | T" (hence Any here); the
            # asyncio client always returns an awaitable.
            return await result if inspect.isawaitable(result) else result
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            # redis-py builds these messages itself (host, port, errno); they hold no password.
            detail = str(exc)[:200] or type(exc).__name__
            raise StoreUnavailable(f"Redis at {self._target} is unavailable: {detail}") from exc
        except (redis.exceptions.RedisError, OSError) as exc:
            # Server replies may quote arguments (sealed values); name the kind only.
            raise StoreUnavailable(
                f"Redis at {self._target} failed a command: {type(exc).__name__}"
            ) from exc

    # -- SessionStore -------------------------------------------------------------------------

    async def get(self, key: str) -> QlikSession | None:
        """The live session for `key`, sliding its TTL; `None` if absent, expired or unsealable."""
        rkey = self._session_key(key_digest(key))
        raw: bytes | None = await self._run(self._get_sliding(keys=[rkey]))
        if not raw:
            return None
        ttl_text, _, blob = raw.partition(b":")
        data = self._sealer.open(rkey, blob)
        session = None if data is None else decode_session(data)
        if session is None:
            return None
        try:
            ttl_ms = int(ttl_text)
        except ValueError:
            return None
        await self._extend_index(key, session.user_key, ttl_ms)
        return session

    async def set(self, key: str, session: QlikSession, ttl: float) -> None:
        """Store `session` for `ttl` seconds (sliding), indexed under `session.user_key`.

        The index entry is written first, so every live session is always findable by
        `keys_for_user`.
        """
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        ttl_ms = max(1, round(ttl * 1000))
        digest = key_digest(key)
        rkey = self._session_key(digest)
        await self._index_add(key, session.user_key, ttl_ms)
        value = f"{ttl_ms}:".encode() + self._sealer.seal(rkey, encode_session(session))
        await self._run(self._client.set(rkey, value, px=ttl_ms))

    async def delete(self, key: str) -> QlikSession | None:
        """Remove `key`; return the session that was there, if it could be opened."""
        rkey = self._session_key(key_digest(key))
        raw: bytes | None = await self._run(self._client.getdel(rkey))
        if not raw:
            return None
        _, _, blob = raw.partition(b":")
        data = self._sealer.open(rkey, blob)
        return None if data is None else decode_session(data)

    async def keys_for_user(self, user_key: str) -> list[str]:
        """Every live key of `user_key`, written by any instance; prunes entries of dead keys."""
        ikey = self._index_key(user_key)
        entries: dict[bytes, bytes] = await self._run(self._client.hgetall(ikey))
        if not entries:
            return []
        fields = list(entries)
        pipe = self._client.pipeline(transaction=False)
        for field in fields:
            pipe.exists(self._session_key(field.decode("ascii", "replace")))
        alive: list[int] = await self._run(pipe.execute())
        live: list[str] = []
        stale: list[bytes] = []
        for field, exists in zip(fields, alive, strict=True):
            if not exists:
                stale.extend((field, entries[field]))
                continue
            binding = f"{ikey}\x00{field.decode('ascii', 'replace')}"
            data = self._sealer.open(binding, entries[field])
            if data is not None:
                live.append(data.decode("utf-8"))
        if stale:
            await self._run(self._index_prune(keys=[ikey], args=stale))
        return sorted(live)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """Exclusive lock on `key` across every process sharing this Redis and prefix.

        Tasks of this process queue on a local lock first, so only one of them polls Redis.
        Raises `StoreUnavailable` if the lock is not taken within `lock_wait` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lock_wait
        local = self._local_locks.get(key)
        if local is None:
            local = self._local_locks[key] = asyncio.Lock()
        try:
            try:
                async with asyncio.timeout(self._lock_wait):
                    await local.acquire()
            except TimeoutError:
                raise self._lock_timeout_error() from None
            try:
                rkey = f"{self._prefix}l:{{{key_digest(key)}}}"
                token = secrets.token_hex(16)
                while not await self._run(self._client.set(rkey, token, nx=True, px=self._lock_ms)):
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise self._lock_timeout_error()
                    await asyncio.sleep(min(self._lock_retry, remaining))
                try:
                    yield
                finally:
                    await self._unlock(rkey, token)
            finally:
                local.release()
        finally:
            # Drop idle locks so the dict stays bounded by the number of in-flight logins.
            if not local.locked() and not getattr(local, "_waiters", None):
                self._local_locks.pop(key, None)

    async def aclose(self) -> None:
        """Close the connection pool if this store created it; a passed-in client is left open."""
        if self._owns_client:
            # The pool was handed to the client, so the client does not close it by default.
            assert isinstance(self._client, aioredis.Redis)
            await self._client.aclose(close_connection_pool=True)

    # -- helpers -------------------------------------------------------------------------------

    def _lock_timeout_error(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"login lock not acquired within lock_wait={self._lock_wait:g}s "
            f"(held by another login on Redis at {self._target})"
        )

    async def _unlock(self, rkey: str, token: str) -> None:
        try:
            await self._run(self._release(keys=[rkey], args=[token]))
        except StoreUnavailable as exc:
            # Raising here would mask the body's own outcome; the lock expires after lock_timeout.
            logger.warning("could not release a login lock, it expires by itself: %s", exc)

    async def _extend_index(self, key: str, user_key: str, ttl_ms: int) -> None:
        """Keep the user's index alive at least as long as the session `get` just slid.

        Every extension sets the index to at least `2 * ttl`, so it still outlives the session if
        the next extension comes up to `ttl / 2` later; this process therefore extends at most
        every `ttl / 2` per user instead of adding a round trip to every `get`.
        """
        last = self._touched.get(self._index_key(user_key))
        if last is not None and last[1] >= ttl_ms and (self._clock() - last[0]) * 1000 < ttl_ms / 2:
            return
        await self._index_add(key, user_key, ttl_ms)

    async def _index_add(self, key: str, user_key: str, ttl_ms: int) -> None:
        # Rewriting the entry (not only the TTL) also heals an index lost while sessions lived.
        digest = key_digest(key)
        ikey = self._index_key(user_key)
        sealed_key = self._sealer.seal(f"{ikey}\x00{digest}", key.encode("utf-8"))
        await self._run(self._index_touch(keys=[ikey], args=[2 * ttl_ms, digest, sealed_key]))
        self._touched[ikey] = (self._clock(), ttl_ms)
        self._touched.move_to_end(ikey)
        while len(self._touched) > _TOUCH_MEMORY:
            self._touched.popitem(last=False)
