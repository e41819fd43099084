"""`Upstream`: the runtime side of a `QlikTarget`: its pooled clients, path policy and `Route`.

Created once at start-up. Two clients share one aiohttp pool per target: the engine for proxied
requests (`route.engine`) and an httpx client for logins and Qlik's own APIs. The httpx client has a
cookie jar that never stores anything: a shared jar would carry one user's Qlik cookie into another
user's request (fastapi-proxy-lib GHSA-7vwr-g6pm-9hc8).
"""

from __future__ import annotations

import http.cookiejar
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx2 as httpx

from .auth.base import LoginContext
from .identity import QlikIdentity
from .proxy.aiohttp_transport import AiohttpEngine, AiohttpTransport
from .proxy.engine import ProxyEngine, Timeouts
from .proxy.engine_choice import ChosenEngine
from .proxy.guards import PathPolicy
from .proxy.headers import RequestHeaderPolicy
from .proxy.route import Network, Route
from .stores.base import QlikSession
from .target import QlikTarget

__all__ = ["NoCookieJar", "Upstream", "proxy_engine"]


class NoCookieJar(http.cookiejar.CookieJar):
    """A jar that refuses every cookie, so a pooled client can never mix users' sessions."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: object, request: object) -> None:
        return None


class Upstream:
    """One Qlik proxy + virtual proxy at run time.

    `header_policy` (default: strip the target's own identity headers) and `trusted_proxies` are
    the middleware's, shared by all its targets.
    """

    def __init__(
        self,
        target: QlikTarget,
        *,
        header_policy: RequestHeaderPolicy | None = None,
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.target = target
        self.paths = PathPolicy.build(
            target.mount_path or "/", target.blocked_paths, target.allowed_paths
        )
        parts = urlsplit(target.url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl_context: ssl.SSLContext | None = None
        if target.is_https:
            self.ssl_context = _ssl_context(target.verify)
        self._header_policy = header_policy or RequestHeaderPolicy.build(
            target.auth.identity_headers
        )
        self._trusted_proxies = tuple(trusted_proxies)
        self.transport: AiohttpTransport
        self.route: Route
        self.client = self._new_client()

    def _new_client(self) -> httpx.AsyncClient:
        # httpx on aiohttp for logins and Qlik API calls (see aiohttp_transport.py for the
        # measurements behind it). Proxied requests skip httpx: `client.send` adds cookie-jar, auth
        # and redirect machinery that a proxy never uses, at a measured ~40% of the request's cost.
        self.transport = AiohttpTransport(
            ssl_context=self.ssl_context, max_connections=self.target.max_connections
        )
        target = self.target
        self.route = Route(
            origin=target.url,
            host=self.host,
            port=self.port,
            base_path=target.upstream_base_path,
            mount_path=target.mount_path or "/",
            host_header=target.host_header,
            ssl_context=self.ssl_context,
            engine=self._new_engine(),
            header_policy=self._header_policy,
            trusted_proxies=self._trusted_proxies,
            websocket_open_timeout=target.timeouts.websocket_open,
        )
        return httpx.AsyncClient(
            transport=self.transport,
            timeout=target.timeouts.httpx(),
            cookies=NoCookieJar(),
            follow_redirects=False,
            trust_env=False,
        )

    def _new_engine(self) -> ProxyEngine:
        target = self.target
        verify = target.verify
        engine = proxy_engine(
            target.resolved_http_engine,
            transport=self.transport,
            timeouts=target.timeouts,
            verify=verify,
            max_connections=target.max_connections,
        )
        if isinstance(engine, AiohttpEngine) or self.ssl_context is None or verify is False:
            return engine  # aiohttp verifies as Python does; nothing to verify for rustls
        return ChosenEngine(
            preferred=engine,
            fallback=AiohttpEngine(self.transport, self.target.timeouts),
            url=self.target.url,
            host=self.host,
            port=self.port,
            ssl_context=self.ssl_context,
            explicit=self.target.http_engine == "reqwest",
            connect_timeout=self.target.timeouts.connect,
        )

    async def choose_engine(self) -> str | None:
        """Decide the engine now (at start-up) where it depends on Qlik's certificate; its name,
        or None while Qlik cannot be reached (then the first request decides).

        Raises `ConfigurationError` when the engine asked for cannot verify Qlik."""
        if isinstance(self.engine, ChosenEngine):
            return await self.engine.choose()
        return self.target.resolved_http_engine

    def check_identity(self, identity: QlikIdentity) -> None:
        """Raise `InvalidIdentity` if this target's strategy cannot carry `identity`."""
        self.target.auth.check_identity(identity)

    @property
    def engine(self) -> ProxyEngine:
        return self.route.engine

    def ensure_open(self) -> None:
        """Re-create the pools after a shutdown, for servers that run the lifespan more than once."""
        if self.client.is_closed:
            self.client = self._new_client()

    def login_context(self, host: str) -> LoginContext:
        return LoginContext(
            client=self.client,
            proxy_url=self.target.url,
            prefix=self.target.prefix,
            host=self.target.host_header or host,
            cookie_name=self.target.cookie_name or "",
        )

    def personal_api(
        self, identity: QlikIdentity, session: QlikSession, host: str
    ) -> tuple[str, list[tuple[bytes, bytes]]]:
        """URL base (`…/<prefix>/qps/`) and headers for a call to Qlik's personal API with `session`
        (`qps/user`, `qps/csrftoken`): the Host Qlik must see, the session cookie and the
        strategy's identity headers."""
        headers = [
            (b"host", (self.target.host_header or host).encode("latin-1")),
            (b"cookie", session.cookie_header().encode("latin-1")),
            *self.target.auth.upstream_headers(identity),
        ]
        return self.target.url + self.target.upstream_base_path + "qps/", headers

    async def aclose(self) -> None:
        await self.engine.aclose()
        await self.client.aclose()
        await self.target.auth.aclose()


def proxy_engine(
    kind: str,
    *,
    transport: AiohttpTransport,
    timeouts: Timeouts,
    verify: bool | str | ssl.SSLContext,
    max_connections: int,
) -> ProxyEngine:
    """The engine proxied requests go through: `"aiohttp"` over `transport`'s pool, else
    `"reqwest"` (which cannot take an `ssl.SSLContext`)."""
    if kind == "aiohttp":
        return AiohttpEngine(transport, timeouts)
    from .proxy.reqwest_engine import ReqwestEngine  # imports pyreqwest only when used

    assert not isinstance(verify, ssl.SSLContext)  # the targets' `http_engine` checks rule it out
    return ReqwestEngine(timeouts=timeouts, verify=verify, max_connections=max_connections)


def _ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        return ssl.create_default_context()
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    # verify=False was chosen explicitly; the middleware logs it loudly at start-up.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
