"""`QlikSSO`: identity → one cached Qlik session per user, shared by the HTTP and WebSocket paths.

One instance per application. The ASGI middleware uses it for every request under a mount path;
the app uses it to log users out (`await sso.logout(identity)`), also reachable from routes as
`request.scope["qlik_sso"]`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Sequence

from starlette.requests import HTTPConnection

from .errors import (
    ConfigurationError,
    InvalidIdentity,
    NotAuthenticated,
    QlikError,
    TooManyLogins,
)
from .identity import QlikIdentity
from .proxy.headers import RequestHeaderPolicy
from .proxy.upstream import Upstream
from .resolvers.base import Resolved, ResolverLike, as_resolver
from .sessions import SessionManager
from .stores.base import QlikSession, SessionStore
from .stores.memory import MemorySessionStore
from .target import QlikTarget

__all__ = ["QlikSSO"]

logger = logging.getLogger("qlik_sso_middleware")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class QlikSSO:
    """Configuration and shared state, validated once.

    - `targets`: the Qlik virtual proxies served (one is the common case; several for tenants).
    - `resolver`: who is logged in (a `Resolver` or a plain function, sync or async).
    - `store`: where sessions live (default: `MemorySessionStore`; `RedisSessionStore` for many
      app processes).
    - `allowed_origins`: origins besides the app's own that may open WebSockets and send unsafe
      requests (`https://portal.acme.com`).
    - `trusted_proxies`: peers whose `X-Forwarded-For` is kept and extended (default none).
    - `forward_cookies`: app cookie names that may reach Qlik (default none).
    - `login_url`: where page loads without a logged-in user are redirected (default: 401).
    - `allow_missing_origin`: accept WebSocket handshakes without `Origin` (non-browser clients);
      off by default because it weakens cross-site WebSocket hijacking protection.
    - `max_concurrent_logins`: Qlik logins in flight at once, all users together (default 16);
      a request that waits `login_wait` seconds for a slot gets 503 (`TooManyLogins`). Keep it
      under the target's `max_connections` so a flood of new users cannot starve the others.
    """

    def __init__(
        self,
        targets: QlikTarget | Sequence[QlikTarget],
        *,
        resolver: ResolverLike,
        store: SessionStore | None = None,
        allowed_origins: Sequence[str] = (),
        trusted_proxies: Sequence[str] = (),
        forward_cookies: Sequence[str] = (),
        login_url: str | None = None,
        allow_missing_origin: bool = False,
        max_concurrent_logins: int = 16,
        login_wait: float = 10.0,
    ) -> None:
        target_list = [targets] if isinstance(targets, QlikTarget) else list(targets)
        if not target_list:
            raise ConfigurationError("at least one Qlik target is needed", field="targets")
        names = [t.name for t in target_list]
        if len(set(names)) != len(names):
            raise ConfigurationError("target names must be unique", field="targets")
        mounts = [t.mount_path for t in target_list]
        if len(set(mounts)) != len(mounts):
            raise ConfigurationError("mount paths must be unique", field="targets")
        for origin in allowed_origins:
            if "://" not in origin or origin.endswith("/"):
                raise ConfigurationError(
                    f"{origin!r} must be scheme://host[:port]", field="allowed_origins"
                )
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
        self.login_wait = float(login_wait)
        self._login_slots = asyncio.Semaphore(max_concurrent_logins)
        self.targets = {t.name: t for t in target_list}
        self.upstreams = [Upstream(t) for t in target_list]
        # Longest mount first so /sso/tenant/ wins over /sso/.
        self.upstreams.sort(key=lambda u: len(u.target.mount_path or ""), reverse=True)
        self._by_name = {u.target.name: u for u in self.upstreams}
        self.resolver = as_resolver(resolver)
        # A store the caller passed in is the caller's to close (it may be shared).
        self._owns_store = store is None
        self.store: SessionStore = store if store is not None else MemorySessionStore()
        self.sessions = SessionManager(self.store)
        self.allowed_origins = frozenset(o.lower() for o in allowed_origins)
        try:
            # Parsed once: the per-request path only tests membership.
            self.trusted_proxies: tuple[Network, ...] = tuple(
                ipaddress.ip_network(n, strict=False) for n in trusted_proxies
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc), field="trusted_proxies") from exc
        self.forward_cookies = tuple(forward_cookies)
        self.login_url = login_url
        self.allow_missing_origin = allow_missing_origin
        identity_headers = [
            getattr(t.auth, "header_name", None) for t in target_list
        ]  # every header any target trusts for identity, stripped from browsers everywhere
        # Headers a resolver trusts for identity (an authenticating proxy's) are Qlik's business
        # no more than the browser's: stripped too.
        identity_headers.extend(getattr(self.resolver, "trusted_headers", ()))
        self.header_policy = RequestHeaderPolicy.build(
            [h for h in identity_headers if isinstance(h, str)], self.forward_cookies
        )
        for t in target_list:
            if t.verify is False:
                logger.warning(
                    "TLS verification of the Qlik proxy %s is OFF: anyone on the network path can "
                    "impersonate Qlik and read every session",
                    t.url,
                )

    def upstream_for_path(self, path: str) -> Upstream | None:
        for upstream in self.upstreams:
            mount = upstream.target.mount_path or "/"
            if path.startswith(mount) or path + "/" == mount:
                return upstream
        return None

    def upstream_named(self, name: str | None) -> Upstream:
        if name is None:
            if len(self.upstreams) != 1:
                raise ConfigurationError("several targets: name the one to use", field="target")
            return self.upstreams[0]
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigurationError(f"no target named {name!r}", field="target") from None

    async def identify(self, conn: HTTPConnection, upstream: Upstream) -> QlikIdentity:
        """The request's Qlik identity for `upstream`, or an error with its HTTP/WS answer."""
        result = await self.resolver.resolve(conn)
        if result is None:
            raise NotAuthenticated("no logged-in application user")
        if isinstance(result, Resolved):
            identity, target = result.identity, result.target
            if target is not None and target != upstream.target.name:
                # A tenant's user asking for another tenant's Qlik.
                raise InvalidIdentity(
                    f"user of target {target!r} requested target {upstream.target.name!r}",
                    public_message="This Qlik site is not available to this user",
                )
        elif isinstance(result, QlikIdentity):
            identity = result
        else:
            raise ConfigurationError(
                f"resolver returned {type(result).__name__}, expected QlikIdentity or None",
                field="resolver",
            )
        upstream.target.auth.check_identity(identity)
        return identity

    @staticmethod
    def session_key(upstream: Upstream, identity: QlikIdentity) -> str:
        return f"{upstream.target.key}|{identity.user_key()}"

    async def session_for(
        self, identity: QlikIdentity, upstream: Upstream, host: str
    ) -> QlikSession:
        key = self.session_key(upstream, identity)

        async def login() -> QlikSession:
            try:
                async with asyncio.timeout(self.login_wait):
                    await self._login_slots.acquire()
            except TimeoutError:
                raise TooManyLogins(
                    f"no login slot free within login_wait={self.login_wait:g}s"
                ) from None
            try:
                ctx = upstream.login_context(host)
                try:
                    session = await upstream.target.auth.login(identity, ctx)
                except QlikError as exc:
                    logger.warning(
                        "Qlik login failed for %s on %s: %s", identity, upstream.target.name, exc
                    )
                    raise
            finally:
                self._login_slots.release()
            logger.info("Qlik login: %s on %s", identity, upstream.target.name)
            return session

        return await self.sessions.obtain(key, login, upstream.target.session_ttl)

    async def renew(
        self, identity: QlikIdentity, upstream: Upstream, host: str, stale: QlikSession
    ) -> QlikSession:
        """Qlik no longer honours `stale`: drop it and log in again (shared by concurrent callers)."""
        logger.info("Qlik session of %s on %s is gone; renewing", identity, upstream.target.name)
        await self.sessions.invalidate(self.session_key(upstream, identity), stale)
        return await self.session_for(identity, upstream, host)

    async def adopt(
        self,
        identity: QlikIdentity,
        upstream: Upstream,
        stale: QlikSession,
        renewed: str,
        host: str,
    ) -> QlikSession:
        """Qlik answered a request made with `stale` by issuing the session `renewed` (it
        re-authenticated the user by header, e.g. after a restart). The first such session is
        kept; one that a concurrent request brought in afterwards is spare and is ended at once,
        so that it does not hold one of the user's five Qlik session slots. Returns the session
        now cached for the user.
        """
        key = self.session_key(upstream, identity)
        fresh = QlikSession(stale.cookie_name, renewed, stale.user_key, time.time())
        async with self.store.lock(key):
            current = await self.store.get(key)
            if current is None or current.cookie_value in (stale.cookie_value, renewed):
                await self.store.set(key, fresh, upstream.target.session_ttl)
                return fresh
        await self._end_spare(identity, upstream, fresh, host)
        return current

    async def _end_spare(
        self, identity: QlikIdentity, upstream: Upstream, spare: QlikSession, host: str
    ) -> None:
        # The personal API ends exactly the session whose cookie is presented.
        base, headers = upstream.personal_api(identity, spare, host)
        try:
            await upstream.client.delete(base + "user", headers=headers)
        except Exception as exc:
            logger.debug(
                "could not end a spare Qlik session of %s: %s", identity, type(exc).__name__
            )
        else:
            logger.debug("ended a spare Qlik session of %s on %s", identity, upstream.target.name)

    async def forget(self, identity: QlikIdentity, upstream: Upstream, stale: QlikSession) -> None:
        await self.sessions.invalidate(self.session_key(upstream, identity), stale)

    async def logout(
        self, identity: QlikIdentity, *, target: str | None = None, host: str | None = None
    ) -> int:
        """End `identity`'s Qlik sessions on one target (or all) and clear them from the cache.

        Safe to call when the user has no session. Returns how many cached sessions were dropped.
        Qlik is told even when nothing was cached (a strategy with the QPS API then ends every
        session of the user); a Qlik failure is logged and re-raised after the cache is cleared.
        """
        upstreams = self.upstreams if target is None else [self.upstream_named(target)]
        dropped = 0
        failure: QlikError | None = None
        for upstream in upstreams:
            ctx = upstream.login_context(host or upstream.host)
            cached = await self.sessions.drop_user(identity.user_key(), upstream.target.key + "|")
            dropped += len(cached)
            sessions: list[QlikSession | None] = [s for _, s in cached] or [None]
            for session in sessions:
                try:
                    await upstream.target.auth.logout(identity, session, ctx)
                except QlikError as exc:
                    failure = exc
                except Exception as exc:
                    failure = QlikError(f"logout of {identity} on {upstream.target.name} failed")
                    failure.__cause__ = exc
            logger.info("Qlik logout: %s on %s", identity, upstream.target.name)
        if failure is not None:
            logger.warning("Qlik logout of %s: %s", identity, failure)
            raise failure
        return dropped

    def ensure_open(self) -> None:
        for upstream in self.upstreams:
            upstream.ensure_open()

    async def aclose(self) -> None:
        for upstream in self.upstreams:
            await upstream.aclose()
        if self._owns_store:
            await self.store.aclose()
