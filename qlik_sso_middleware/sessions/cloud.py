"""`CloudSessions`: every user's Qlik Cloud credentials on one tenant, kept in the store.

Two kinds, each one per user, cached in the `SessionStore` like a Qlik Sense session (sealed at
rest in Redis, single-flight across processes through the store's lock, bounded by the login
slots):

- **access tokens** (the token broker): an impersonation token per user, handed out while it has
  at least `CloudTarget.token_margin` seconds left, then replaced by a new one. Qlik's token
  lifetime (6 h) decides the store TTL, not the sliding session TTL.
- **cookie sessions** (the cookie proxy): the cookies a JWT login returns, held server-side per
  user, renewed when the tenant forgets them, with the session's CSRF token fetched once.

Every call to the tenant waits its turn in the `QlikCloudClient`'s rate-limit queues. `clock` is
wall-clock seconds (token expiry), injectable for tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..cloud.client import QlikCloudClient
from ..cloud.jwt_session import CloudCookieSession
from ..cloud.oauth import AccessToken
from ..cloud.upstream import CloudUpstream
from ..errors import QlikError
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from .csrf import CsrfTokens, Probe
from .manager import SessionManager

__all__ = ["ACCESS_TOKEN", "COOKIES", "CloudSessions", "broker_answer"]

logger = logging.getLogger("qlik_sso_middleware")

#: `QlikSession.cookie_name` of a stored access token (`cookie_value` is the token).
ACCESS_TOKEN = "qlik-cloud-access-token"
#: `QlikSession.cookie_name` of a stored cookie session (`cookie_value` is the `Cookie` header).
COOKIES = "qlik-cloud-cookies"
T = TypeVar("T")
#: Shortest store TTL of a token too close to its expiry to be handed out again.
_MIN_TTL = 1.0
#: Revocations of one logout in flight at once (each also waits its turn in the Tier-2 queue).
_REVOKE_CONCURRENCY = 4


class CloudSessions:
    """The tokens and cookie sessions of one `CloudUpstream`, kept in `manager`'s store."""

    def __init__(
        self,
        upstream: CloudUpstream,
        manager: SessionManager,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.upstream = upstream
        self.manager = manager
        self.csrf = CsrfTokens()
        self._clock = clock
        target = upstream.target
        self.key_prefix = f"qlik-cloud|{target.tenant_url}|"
        # Keys name what the credential was made with, so two targets on one tenant with other
        # clients, scopes or identity providers never hand out each other's credentials.
        self._token_prefix = self.key_prefix
        if target.oauth is not None:
            self._token_prefix += f"token|{target.oauth.client_id}|{target.oauth.scope}|"
        self._cookie_prefix = self.key_prefix
        if target.jwt is not None:
            self._cookie_prefix += f"jwt|{target.jwt.issuer}|{target.jwt.key_id}|"

    @property
    def name(self) -> str:
        return self.upstream.target.name or ""

    @property
    def client(self) -> QlikCloudClient:
        return self.upstream.client

    async def _ask(self, what: str, identity: QlikIdentity, call: Callable[[], Awaitable[T]]) -> T:
        """One sign-in call to the tenant within a login slot, logged (never with its result)."""
        async with self.manager.login_slot():
            try:
                result = await call()
            except QlikError as exc:
                logger.warning("Qlik Cloud %s for %s on %s: %s", what, identity, self.name, exc)
                raise
        logger.info("Qlik Cloud %s: %s on %s", what, identity, self.name)
        return result

    # -- access tokens (the token broker) ------------------------------------------------------

    async def access_token(self, identity: QlikIdentity) -> AccessToken:
        """`identity`'s impersonation token: the cached one while it has `token_margin` seconds
        left, else a new one (provisioning the user first when the target says so)."""
        cloud = self.upstream.cloud_identity(identity)
        margin = self.upstream.target.token_margin

        def usable(record: QlikSession) -> bool:
            expires = record.expires_at
            return expires is not None and expires - self._clock() >= margin

        async def login() -> QlikSession:
            token = await self._ask("token", identity, lambda: self.client.access_token(cloud))
            return QlikSession(
                ACCESS_TOKEN,
                token.value,
                identity.user_key(),
                self._clock(),
                expires_at=token.expires_at,
            )

        def ttl(record: QlikSession) -> float:
            expires = record.expires_at or 0.0
            return max(_MIN_TTL, expires - margin - self._clock())

        record = await self.manager.obtain(
            self._token_prefix + cloud.subject, login, ttl, usable=usable
        )
        scope = self.upstream.target.oauth.scope if self.upstream.target.oauth else ""
        return AccessToken(record.cookie_value, record.expires_at or 0.0, scope, cloud.subject)

    # -- cookie sessions (the cookie proxy) ----------------------------------------------------

    def cookie_key(self, identity: QlikIdentity) -> str:
        return self._cookie_prefix + self.upstream.cloud_identity(identity).subject

    async def obtain(self, identity: QlikIdentity) -> QlikSession:
        """The user's cached cookie session, else a new one from a JWT login.

        A session made while the user had other attributes (name, e-mail, groups) is replaced:
        the tenant reads them only at login.
        """
        cloud = self.upstream.cloud_identity(identity)

        async def login() -> QlikSession:
            session = await self._ask("login", identity, lambda: self.client.login(cloud))
            return QlikSession(
                COOKIES,
                session.cookie_header(),
                identity.user_key(),
                session.created_at,
                fingerprint=identity.fingerprint,
            )

        return await self.manager.obtain(
            self._cookie_prefix + cloud.subject,
            login,
            self.upstream.target.session_ttl,
            fingerprint=identity.fingerprint,
        )

    async def current(self, identity: QlikIdentity) -> QlikSession | None:
        return await self.manager.get(self.cookie_key(identity))

    async def renew(self, identity: QlikIdentity, stale: QlikSession) -> QlikSession:
        """The tenant no longer honours `stale`: drop it and log in again (shared by callers)."""
        logger.info("Qlik Cloud session of %s on %s is gone; renewing", identity, self.name)
        self.csrf.forget(stale.cookie_value)
        await self.manager.invalidate(self.cookie_key(identity), stale)
        return await self.obtain(identity)

    async def forget(self, identity: QlikIdentity, stale: QlikSession) -> None:
        """The tenant ended `stale`: the user's next request logs in again."""
        self.csrf.forget(stale.cookie_value)
        await self.manager.invalidate(self.cookie_key(identity), stale)

    async def csrf_token(self, identity: QlikIdentity, session: QlikSession) -> Probe:
        """The session's `qlik-csrf-token` (`GET /api/v1/csrf-token`), fetched once per session.

        When the tenant says the session is gone, it is renewed once. Returns the session in use
        afterwards and its token.
        """
        cached = self.csrf.cached(session.cookie_value)
        if cached is not None:
            return session, cached
        return await self.csrf.probe(
            session.cookie_value, lambda: self._fetch_csrf_token(identity, session)
        )

    async def _fetch_csrf_token(self, identity: QlikIdentity, session: QlikSession) -> Probe:
        for attempt in (1, 2):
            token = await self.client.csrf_token(_cookie_session(session))
            if token is not None:
                self.csrf.remember(session.cookie_value, token)
                return session, token
            if attempt == 1:
                session = await self.renew(identity, session)
        return session, None

    # -- both ------------------------------------------------------------------------------------

    async def logout(self, identity: QlikIdentity, host: str) -> int:
        """Drop the user's cached tokens and cookie sessions of this tenant, and revoke the tokens.

        Every dropped impersonation token is revoked at the tenant (`POST /oauth/revoke`, at most
        `_REVOKE_CONCURRENCY` at a time, each in the client's Tier-2 queue and given the target's
        `timeout` in all), as Qlik advises for a user leaving the app: a token the broker handed
        to the browser stops working there too. Best effort: a revocation that fails (tenant
        down, refused, rate limited, too slow) is logged at WARNING without the token and the
        logout still succeeds; that token then stays valid at Qlik until it expires. The token
        comes back from the dropped record, whatever the store (memory, or Redis where it was
        sealed). A dropped cookie session is not ended at the tenant (it lasts until the
        tenant's inactivity timeout), but nothing on this side hands it out again. Returns how
        many were dropped (the revocations do not change the count).
        """
        dropped = await self.manager.drop_user(identity.user_key(), self.key_prefix)
        for _, record in dropped:
            self.csrf.forget(record.cookie_value)
        tokens = [r.cookie_value for _, r in dropped if r.cookie_name == ACCESS_TOKEN]
        if tokens and self.client.tokens is not None:
            limit = asyncio.Semaphore(_REVOKE_CONCURRENCY)
            await asyncio.gather(*(self._revoke(identity, token, limit) for token in tokens))
        logger.info("Qlik Cloud logout: %s on %s", identity, self.name)
        return len(dropped)

    async def _revoke(self, identity: QlikIdentity, token: str, limit: asyncio.Semaphore) -> None:
        """Revoke one dropped token; a failure is logged (never with the token), not raised."""
        wait = self.upstream.target.timeout
        async with limit:
            try:
                # A logout does not sit in the rate-limit queue for long (its max_wait may be
                # minutes): one call's `timeout`, then the token is left to expire.
                await asyncio.wait_for(self.client.revoke_token(token), wait)
            except Exception as exc:  # best effort: the logout itself has succeeded
                if isinstance(exc, TimeoutError):
                    said = f"no answer within {wait:g} s"
                else:
                    # The client's errors never carry the token; replaced anyway, in case.
                    said = str(exc).replace(token, "********") or type(exc).__name__
                logger.warning(
                    "Qlik Cloud logout of %s on %s: a token could not be revoked at the tenant "
                    "and stays valid there until it expires: %s",
                    identity,
                    self.name,
                    said,
                )
                return
        logger.info("Qlik Cloud token of %s revoked on %s", identity, self.name)


def _cookie_session(record: QlikSession) -> CloudCookieSession:
    """The stored `Cookie` header as the client layer's session."""
    pairs = []
    for part in record.cookie_value.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            pairs.append((name, value))
    return CloudCookieSession("", tuple(pairs), record.created_at)


def broker_answer(token: AccessToken, now: float) -> bytes:
    """The token broker's JSON answer (RFC 6749 §5.1 names; `expires_at` as Qlik writes it).

    What a page's `getAccessToken` function returns to qlik-embed / @qlik/api is `access_token`.
    """
    expires_at = dt.datetime.fromtimestamp(token.expires_at, dt.UTC)
    doc = {
        "access_token": token.value,
        "token_type": "Bearer",
        "expires_in": max(0, int(token.expires_at - now)),
        "expires_at": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "scope": token.scope,
    }
    return json.dumps(doc).encode()
