"""`UserSession`: one request's view of the user's Qlik session, as the forwarders use it.

It implements `proxy.session.ForwardingSession`: the forwarders ask it for the headers that carry the
session and hand it Qlik's answers; it decides what an answer says about the session (forgotten,
reissued, replaced by a concurrent request) and keeps the session it holds current.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..auth.answers import REDIRECTS, is_login_location, qps_user_inactive, session_cookie_from
from ..errors import RequestRefused
from ..identity import QlikIdentity
from ..proxy.engine import UpstreamResponse
from ..proxy.request import ProxiedRequest
from ..stores.base import QlikSession
from .target import TargetSessions

__all__ = ["UserSession"]

# Requests that may be sent again after a renewal (no body, no effect).
_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS"})


class UserSession:
    """The session of `identity` on one target for one request from `host` (the browser's Host)."""

    __slots__ = (
        "_fingerprint",
        "_key",
        "_sessions",
        "_token_cached",
        "host",
        "identity",
        "session",
    )

    def __init__(self, sessions: TargetSessions, identity: QlikIdentity, host: str) -> None:
        self._sessions = sessions
        self._key = sessions.key_prefix + identity.user_key()
        self._fingerprint = identity.fingerprint
        self.identity = identity
        self.host = host
        self.session: QlikSession | None = None
        self._token_cached = False

    def _held(self) -> QlikSession:
        if self.session is None:
            raise RuntimeError("UserSession.open() was not awaited")
        return self.session

    async def open(self) -> None:
        # The common case, a cached session made for these attributes, is one store read.
        cached = await self._sessions.manager.store.get(self._key)
        if cached is None or cached.fingerprint != self._fingerprint:
            cached = await self._sessions.obtain(self.identity, self.host)
        self.session = cached

    def cookie_header(self) -> bytes:
        return self._held().cookie_header().encode("latin-1")

    def identity_headers(self) -> Sequence[tuple[bytes, bytes]]:
        return self._sessions.upstream.target.auth.upstream_headers(self.identity)

    async def review(
        self, response: UpstreamResponse, req: ProxiedRequest, *, retried: bool = False
    ) -> bool:
        """See `ForwardingSession.review`; on the answer to a repeated request (`retried`) only
        a reissued cookie counts, never a second renewal (no loop with a misconfigured Qlik)."""
        held = self._held()
        if not retried:
            status = response.status_code
            if (
                status in REDIRECTS and is_login_location(response.header(b"location"))
            ) or await _qps_user_inactive(response, req):
                await response.aclose()
                self.session = await self._sessions.renew(self.identity, self.host, held)
                if req.method not in _REPEATABLE:
                    raise RequestRefused(
                        "The Qlik session had expired and was renewed; please retry",
                        status_code=503,
                    )
                return True
            if response.status_code == 403 and req.method in _REPEATABLE:
                # After a Qlik restart, every request still carrying the forgotten cookie makes
                # Qlik log the user in again by header; past five it answers "too many sessions".
                # If a concurrent request has meanwhile adopted one of those, use it (once).
                current = await self._sessions.current(self.identity)
                if current is not None and current.cookie_value != held.cookie_value:
                    await response.aclose()
                    self.session = current
                    return True
        set_cookies = response.header_values(b"set-cookie")
        if set_cookies:
            renewed = session_cookie_from(
                [c.decode("latin-1") for c in set_cookies], held.cookie_name
            )
            if renewed is not None and renewed != held.cookie_value:
                # Qlik re-authenticated the user by header and issued a new session: keep one.
                await self._sessions.adopt(self.identity, held, renewed, self.host)
        return False

    async def websocket_token(self, *, fresh: bool = False) -> str | None:
        """See `ForwardingSession.websocket_token`; `fresh` asks Qlik rather than the cache (the
        probe then also proves Qlik still knows the session: offload mode, which cannot retry a
        refused handshake, asks on every one)."""
        held = self._held()
        if fresh:
            self._sessions.csrf.forget(held.cookie_value)
        self._token_cached = self._sessions.csrf.cached(held.cookie_value) is not None
        self.session, token = await self._sessions.csrf_token(self.identity, held, self.host)
        return token

    async def handshake_refused(self) -> bool:
        if not self._token_cached:
            return False
        self._sessions.csrf.forget(self._held().cookie_value)
        return True

    async def renew(self) -> None:
        self.session = await self._sessions.renew(self.identity, self.host, self._held())

    async def ended(self) -> None:
        await self._sessions.forget(self.identity, self._held())


async def _qps_user_inactive(response: UpstreamResponse, req: ProxiedRequest) -> bool:
    """`qps/user` answering `session: inactive` means the session we presented is gone."""
    if req.method != "GET" or req.sub_path.rstrip("/").lower() != "qps/user":
        return False
    if response.status_code != 200:
        return False
    return qps_user_inactive(await response.read())
