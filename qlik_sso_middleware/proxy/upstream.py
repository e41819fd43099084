"""`Upstream`: the runtime side of a `QlikTarget` — its pooled client, path policy and helpers.

Created once at start-up. The client has a cookie jar that never stores anything: a shared jar
would carry one user's Qlik cookie into another user's request (fastapi-proxy-lib GHSA-7vwr-g6pm-9hc8).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import ssl
from collections import OrderedDict
from urllib.parse import unquote_to_bytes, urlsplit

import httpx

from ..auth.base import LoginContext
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from ..target import QlikTarget
from .aiohttp_transport import AiohttpTransport
from .engine import ProxyEngine
from .paths import PathPolicy

__all__ = ["NoCookieJar", "Upstream", "strip_query_params"]


class NoCookieJar(http.cookiejar.CookieJar):
    """A jar that refuses every cookie, so a pooled client can never mix users' sessions."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: object, request: object) -> None:
        return None


def strip_query_params(query: bytes, names: frozenset[bytes]) -> bytes:
    """Drop query parameters whose (decoded, lower-cased) name is in `names`; keep the rest as-is."""
    if not query:
        return query
    if b"%" not in query:
        # Without escapes a name can only match as written, so no match anywhere means no change.
        folded = query.lower()
        if not any(name in folded for name in names):
            return query
    kept = []
    for part in query.split(b"&"):
        name = part.split(b"=", 1)[0]
        if unquote_to_bytes(name.replace(b"+", b" ")).lower() in names:
            continue
        kept.append(part)
    return b"&".join(kept)


class Upstream:
    """One Qlik proxy + virtual proxy at run time."""

    def __init__(self, target: QlikTarget) -> None:
        self.target = target
        self.paths = PathPolicy.build(
            target.mount_path or "/", target.blocked_paths, target.allowed_paths
        )
        parts = urlsplit(target.url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl_context: ssl.SSLContext | None = None
        if target.is_https:
            self.ssl_context = _ssl_context(target.verify)
        # Location needs rewriting only when Qlik sees another host or prefix than the browser.
        self.rewrites_locations = (
            target.host_header is not None or target.mount_path != target.upstream_base_path
        )
        self.transport: AiohttpTransport
        self.engine: ProxyEngine
        self.client = self._new_client()
        self._csrf_tokens: OrderedDict[str, str] = OrderedDict()
        #: In-flight `qps/csrftoken` probes by session cookie value (see proxy/websocket.py).
        self.csrf_probes: dict[str, asyncio.Task[tuple[QlikSession, str | None]]] = {}

    def _new_client(self) -> httpx.AsyncClient:
        # httpx on aiohttp for logins and Qlik API calls (see aiohttp_transport.py for the
        # measurements behind it). Proxied requests skip httpx: `client.send` adds cookie-jar, auth
        # and redirect machinery that a proxy never uses, at a measured ~40% of the request's cost.
        self.transport = AiohttpTransport(
            ssl_context=self.ssl_context, max_connections=self.target.max_connections
        )
        self.engine = self._new_engine()
        self.timeouts = self.target.timeouts.httpx()
        return httpx.AsyncClient(
            transport=self.transport,
            timeout=self.target.timeouts.httpx(),
            cookies=NoCookieJar(),
            follow_redirects=False,
            trust_env=False,
        )

    def _new_engine(self) -> ProxyEngine:
        if self.target.resolved_http_engine == "aiohttp":
            return self.transport
        from .reqwest_engine import ReqwestEngine  # imports pyreqwest only when used

        verify = self.target.verify
        assert not isinstance(verify, ssl.SSLContext)  # `resolved_http_engine` rules it out
        return ReqwestEngine(
            timeouts=self.target.timeouts,
            verify=verify,
            max_connections=self.target.max_connections,
        )

    def ensure_open(self) -> None:
        """Re-create the pool after a shutdown, for servers that run the lifespan more than once."""
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

    def upstream_raw_path(self, sub_path: str) -> bytes:
        """The path Qlik sees: its prefix + what followed the mount path (usually identical)."""
        return (self.target.upstream_base_path + sub_path).encode("ascii")

    def rewrite_location(self, location: bytes, browser_host: str, browser_scheme: str) -> bytes:
        """Point a Qlik redirect back at the app: Qlik's own host names become the browser's host,
        and its prefix becomes the mount path (when they differ)."""
        text = location.decode("latin-1")
        parts = urlsplit(text)
        internal = {self.target.host_header, urlsplit(self.target.url).netloc} - {None}
        if parts.netloc and parts.netloc.lower() in {h.lower() for h in internal if h}:
            text = (
                f"{browser_scheme}://{browser_host}"
                + text[len(f"{parts.scheme}://{parts.netloc}") :]
            )
            parts = urlsplit(text)
        base, mount = self.target.upstream_base_path, self.target.mount_path or "/"
        if base != mount and parts.path.startswith(base):
            prefix_end = text.find(parts.path) if parts.netloc else 0
            text = text[:prefix_end] + mount + text[prefix_end + len(base) :]
        return text.encode("latin-1")

    def cached_csrf_token(self, session_value: str) -> str | None:
        token = self._csrf_tokens.get(session_value)
        if token is not None:
            self._csrf_tokens.move_to_end(session_value)
        return token

    def forget_csrf_token(self, session_value: str) -> None:
        self._csrf_tokens.pop(session_value, None)

    def remember_csrf_token(self, session_value: str, token: str) -> None:
        self._csrf_tokens[session_value] = token
        while len(self._csrf_tokens) > 10_000:
            self._csrf_tokens.popitem(last=False)

    async def aclose(self) -> None:
        if self.engine is not self.transport:
            await self.engine.aclose()
        await self.client.aclose()
        await self.target.auth.aclose()


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
