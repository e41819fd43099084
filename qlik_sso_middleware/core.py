"""`QlikSSO`: identity → one cached Qlik session per user, shared by the HTTP and WebSocket paths.

One instance per application. The ASGI middleware uses it for every request under a mount path;
the app uses it to log users out (`await sso.logout(identity)`), also reachable from routes as
`request.scope["qlik_sso"]`.

Targets are Qlik Sense virtual proxies (`QlikTarget` → `Upstream` + `TargetSessions`) or Qlik
Cloud tenants (`CloudTarget` → `CloudUpstream` + `CloudSessions`); both give the forwarders a
`Route` and a per-request `ForwardingSession`, so the middleware has one code path for both.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.types import Scope

from .cloud.oauth import AccessToken
from .cloud.target import BROWSER_HEADERS, CloudTarget
from .cloud.upstream import CloudUpstream
from .errors import ConfigurationError, InvalidIdentity, NotAuthenticated, QlikError, RequestRefused
from .identity import QlikIdentity
from .proxy.guards import check_cross_site, check_same_origin
from .proxy.headers import RequestHeaderPolicy
from .proxy.request import ProxiedRequest
from .proxy.route import Network
from .resolvers.base import Resolved, ResolverLike, as_resolver, trusted_headers
from .sessions import SessionManager, TargetSessions, UserSession
from .sessions.cloud import CloudSessions
from .sessions.cloud_user import CloudUserSession
from .stores.base import SessionStore
from .stores.memory import MemorySessionStore
from .target import QlikTarget
from .upstream import Upstream

__all__ = ["Admission", "AnyTarget", "AnyUpstream", "QlikSSO"]

logger = logging.getLogger("qlik_sso_middleware")

#: What `QlikSSO` serves: Qlik Sense virtual proxies and Qlik Cloud tenants.
AnyTarget = QlikTarget | CloudTarget
AnyUpstream = Upstream | CloudUpstream


@dataclass(frozen=True, slots=True)
class Admission:
    """A request under a mount path that passed every check: where it goes, the request as the
    forwarders read it, who the user is and the user's Qlik session (not opened yet).

    `token_request`: the request is for a Qlik Cloud target's token broker, answered with the
    user's access token instead of being forwarded.
    """

    upstream: AnyUpstream
    request: ProxiedRequest
    identity: QlikIdentity
    session: UserSession | CloudUserSession
    token_request: bool = False


class QlikSSO:
    """Configuration and shared state, validated once.

    - `targets`: the Qlik virtual proxies (`QlikTarget`) and Qlik Cloud tenants (`CloudTarget`)
      served (one is the common case; several for tenants).
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
        targets: AnyTarget | Sequence[AnyTarget],
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
        target_list = [targets] if isinstance(targets, QlikTarget | CloudTarget) else list(targets)
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
        self.targets = {t.name: t for t in target_list}
        self.resolver = as_resolver(resolver)
        # A store the caller passed in is the caller's to close (it may be shared).
        self._owns_store = store is None
        self.store: SessionStore = store if store is not None else MemorySessionStore()
        self.sessions = SessionManager(
            self.store, max_concurrent_logins=max_concurrent_logins, login_wait=login_wait
        )
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
        # Every header any target or the resolver trusts for identity is stripped from browsers
        # on every target: an authenticating proxy's header is Qlik's business no more than theirs.
        identity_headers = [
            h
            for t in target_list
            for h in (t.auth.identity_headers if isinstance(t, QlikTarget) else BROWSER_HEADERS)
        ]
        identity_headers.extend(trusted_headers(self.resolver))
        self.header_policy = RequestHeaderPolicy.build(identity_headers, self.forward_cookies)
        self.upstreams: list[AnyUpstream] = [self._upstream(t) for t in target_list]
        # Longest mount first so /sso/tenant/ wins over /sso/.
        self.upstreams.sort(key=lambda u: len(u.target.mount_path or ""), reverse=True)
        self._by_name = {u.target.name: u for u in self.upstreams}
        self._target_sessions: dict[str | None, TargetSessions | CloudSessions] = {
            u.target.name: (
                TargetSessions(u, self.sessions)
                if isinstance(u, Upstream)
                else CloudSessions(u, self.sessions)
            )
            for u in self.upstreams
        }
        for t in target_list:
            if t.verify is False:
                logger.warning(
                    "TLS verification of %s is OFF: anyone on the network path can impersonate "
                    "Qlik and read every session",
                    t.url if isinstance(t, QlikTarget) else t.tenant_url,
                )

    def _upstream(self, target: AnyTarget) -> AnyUpstream:
        policy, proxies = self.header_policy, self.trusted_proxies
        if isinstance(target, QlikTarget):
            return Upstream(target, header_policy=policy, trusted_proxies=proxies)
        if not isinstance(target, CloudTarget):
            raise ConfigurationError(
                f"a QlikTarget or CloudTarget, not {type(target).__name__}", field="targets"
            )
        return CloudUpstream(target, header_policy=policy, trusted_proxies=proxies)

    def upstream_for_path(self, path: str) -> AnyUpstream | None:
        for upstream in self.upstreams:
            mount = upstream.target.mount_path or "/"
            if path.startswith(mount) or path + "/" == mount:
                return upstream
        return None

    def upstream_named(self, name: str | None) -> AnyUpstream:
        if name is None:
            if len(self.upstreams) != 1:
                raise ConfigurationError("several targets: name the one to use", field="target")
            return self.upstreams[0]
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigurationError(f"no target named {name!r}", field="target") from None

    async def admit(self, scope: Scope, upstream: AnyUpstream) -> Admission:
        """The checks every request under `upstream`'s mount passes before anything reaches Qlik,
        in the one order both paths use (the in-process middleware, and the front proxy's auth
        sub-request in offload mode): the path as received (`PathPolicy`), cross-site rules
        (WebSocket Origin first; the strictest rule, `check_same_origin`, for a Qlik Cloud token
        request), then who the user is. Raises a `QlikSSOError` whose answer is the refusal;
        nothing has been sent to Qlik then.
        """
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
        request = ProxiedRequest(scope, upstream.paths.check(raw_path))
        websocket = scope["type"] == "websocket"
        broker = isinstance(upstream, CloudUpstream) and upstream.is_token_endpoint(
            request.sub_path
        )
        if broker and websocket:
            raise RequestRefused("The access-token endpoint is not a WebSocket")
        if broker:
            check_same_origin(request, self.allowed_origins)
        else:
            check_cross_site(
                request,
                self.allowed_origins,
                websocket=websocket,
                allow_missing_origin=self.allow_missing_origin,
            )
        identity = await self.identify(HTTPConnection(scope), upstream)
        session = self.user_session(upstream, identity, request.host)
        return Admission(upstream, request, identity, session, broker)

    async def identify(self, conn: HTTPConnection, upstream: AnyUpstream) -> QlikIdentity:
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
        upstream.check_identity(identity)
        return identity

    def user_session(
        self, upstream: AnyUpstream, identity: QlikIdentity, host: str
    ) -> UserSession | CloudUserSession:
        """`identity`'s Qlik session on `upstream` for one request from `host` (the browser's
        `Host`), as the forwarders use it."""
        sessions = self._target_sessions[upstream.target.name]
        if isinstance(sessions, TargetSessions):
            return UserSession(sessions, identity, host)
        return CloudUserSession(sessions, identity)

    async def access_token(self, upstream: AnyUpstream, identity: QlikIdentity) -> AccessToken:
        """`identity`'s Qlik Cloud access token on `upstream` (the token broker's answer)."""
        sessions = self._target_sessions[upstream.target.name]
        if not isinstance(sessions, CloudSessions):
            raise RequestRefused("Access tokens are for Qlik Cloud targets", status_code=404)
        return await sessions.access_token(identity)

    async def logout(
        self, identity: QlikIdentity, *, target: str | None = None, host: str | None = None
    ) -> int:
        """End `identity`'s Qlik sessions on one target (or all) and clear them from the cache.

        Safe to call when the user has no session. Returns how many cached sessions were dropped.
        Qlik is told even when nothing was cached (a strategy with the QPS API then ends every
        session of the user); a Qlik failure is logged and re-raised after the cache is cleared.
        On a Qlik Cloud target the dropped access tokens are also revoked at the tenant, best
        effort: a failed revocation is logged, never raised (`CloudSessions.logout`).
        """
        upstreams = self.upstreams if target is None else [self.upstream_named(target)]
        dropped = 0
        failure: QlikError | None = None
        for upstream in upstreams:
            sessions = self._target_sessions[upstream.target.name]
            try:
                dropped += await sessions.logout(identity, host or upstream.host)
            except QlikError as exc:
                failure = exc
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
