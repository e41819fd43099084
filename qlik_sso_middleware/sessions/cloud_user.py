"""`CloudUserSession`: one request's view of the user's Qlik Cloud cookie session.

It implements `proxy.session.ForwardingSession`, so the proxy core relays the tenant exactly as it
relays a Qlik Sense virtual proxy: the forwarders ask it for the `Cookie` header and the headers
that go with it, and hand it the tenant's answers.

What it sends: the session's cookies (`eas.sid`, `_csrfToken` and their `.sig`s), the session's
`qlik-csrf-token` on every request (the tenant checks it on modifying ones) and in the engine
WebSocket's query, and `qlik-web-integration-id` when configured (the tenant needs it for a
browser `Origin` it does not own). What it reads: a 401, or a redirect to the tenant's login,
means the tenant forgot the session; it is renewed and an idempotent request is sent again once.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from ..auth.answers import REDIRECTS
from ..errors import RequestRefused
from ..identity import QlikIdentity
from ..proxy.engine import UpstreamResponse
from ..proxy.request import ProxiedRequest
from ..stores.base import QlikSession
from .cloud import CloudSessions

__all__ = ["CloudUserSession"]

# Requests that may be sent again after a renewal (no body, no effect).
_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS"})


class CloudUserSession:
    """The cookie session of `identity` on one tenant, for one request."""

    __slots__ = ("_headers", "_sessions", "_token", "_token_cached", "identity", "session")

    def __init__(self, sessions: CloudSessions, identity: QlikIdentity) -> None:
        self._sessions = sessions
        self.identity = identity
        self.session: QlikSession | None = None
        self._token: str | None = None
        self._token_cached = False
        integration = sessions.upstream.target.web_integration_id
        self._headers: list[tuple[bytes, bytes]] = []
        if integration:
            self._headers.append((b"qlik-web-integration-id", integration.encode("ascii")))

    def _held(self) -> QlikSession:
        if self.session is None:
            raise RuntimeError("CloudUserSession.open() was not awaited")
        return self.session

    async def open(self) -> None:
        """The cached session (else a JWT login) and its CSRF token (fetched once a session)."""
        session = await self._sessions.obtain(self.identity)
        self._token_cached = self._sessions.csrf.cached(session.cookie_value) is not None
        self.session, self._token = await self._sessions.csrf_token(self.identity, session)

    def cookie_header(self) -> bytes:
        return self._held().cookie_value.encode("latin-1")

    def identity_headers(self) -> Sequence[tuple[bytes, bytes]]:
        if self._token is None:
            return self._headers
        return [*self._headers, (b"qlik-csrf-token", self._token.encode("latin-1"))]

    async def review(self, response: UpstreamResponse, req: ProxiedRequest) -> bool:
        """See `ForwardingSession.review`: 401 or a redirect to the tenant's login = gone."""
        status = response.status_code
        gone = status == 401 or (status in REDIRECTS and _is_login(response.header(b"location")))
        if not gone:
            return False
        await response.aclose()
        await self.renew()
        if req.method not in _REPEATABLE:
            raise RequestRefused(
                "The Qlik Cloud session had expired and was renewed; please retry",
                status_code=503,
            )
        return True

    async def websocket_token(self, *, fresh: bool = False) -> str | None:
        """The session's CSRF token (fetched by `open`); `fresh` asks the tenant again."""
        held = self._held()
        if fresh:
            self._sessions.csrf.forget(held.cookie_value)
            self.session, self._token = await self._sessions.csrf_token(self.identity, held)
        return self._token

    async def handshake_refused(self) -> bool:
        if not self._token_cached:
            return False
        # The token came from the cache and the tenant refused it: fetch it (or a session) anew.
        held = self._held()
        self._sessions.csrf.forget(held.cookie_value)
        self._token_cached = False
        self.session, self._token = await self._sessions.csrf_token(self.identity, held)
        return True

    async def renew(self) -> None:
        self.session = await self._sessions.renew(self.identity, self._held())
        self._token_cached = False
        self.session, self._token = await self._sessions.csrf_token(self.identity, self.session)

    async def ended(self) -> None:
        await self._sessions.forget(self.identity, self._held())


def _is_login(location: bytes | None) -> bool:
    """A redirect to the tenant's sign-in (`/login?...`), which a live session never gets."""
    if not location:
        return False
    path = urlsplit(location.decode("latin-1")).path
    return path == "/login" or path.startswith("/login/")
