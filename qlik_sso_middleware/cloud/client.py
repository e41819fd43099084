"""`QlikCloudClient`: what the middleware asks of one Qlik Cloud tenant, in one object.

    access_token(identity)   an impersonation token (provisioning the user first if configured)
    login(identity)          a cookie session through a JWT login
    csrf_token(session)      the session's CSRF token (None: the session has ended)
    revoke_token(token)      the tenant stops honouring an access token from access_token()

It owns the connection pool and the rate-limit queues: one per OAuth client for Tier 2 (the
impersonation client and the admin client share one when they are the same client), one for the
admin client's Tier-1 look-ups, and one for JWT logins. Build one per tenant and process; close it
with `aclose()`. Time is injectable: `clock` (wall, token expiry), `monotonic` and `sleep` (queues).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ..errors import CloudUserNotFound, ConfigurationError
from ._http import CloudHttp
from .identity import CloudIdentity
from .jwt_session import CloudCookieSession, JwtSessionClient
from .login_jwt import LoginJwtSigner
from .oauth import AccessToken, OAuthTokenClient
from .pacer import RequestPacer
from .settings import RateLimit
from .target import CloudTarget
from .users import UserProvisioner

__all__ = ["QlikCloudClient"]


class QlikCloudClient:
    """Sign-ins for one tenant (`CloudTarget`); safe for concurrent use within one event loop."""

    def __init__(
        self,
        target: CloudTarget,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.target = target
        self.http = CloudHttp(target)
        pacers: dict[str, RequestPacer] = {}

        def pacer(key: str, limit: RateLimit) -> RequestPacer:
            if key not in pacers:
                pacers[key] = RequestPacer(limit, name=key, clock=monotonic, sleep=sleep)
            return pacers[key]

        self.tokens: OAuthTokenClient | None = None
        if target.oauth is not None:
            tier2 = pacer(f"OAuth client {target.oauth.client_id}", target.token_rate_limit)
            self.tokens = OAuthTokenClient(self.http, target.oauth, tier2, clock=clock)
        self.provisioner: UserProvisioner | None = None
        if target.provision_users and target.admin_oauth is not None:
            admin = target.admin_oauth
            admin_tier2 = pacer(f"OAuth client {admin.client_id}", target.token_rate_limit)
            self.provisioner = UserProvisioner(
                self.http,
                OAuthTokenClient(self.http, admin, admin_tier2, clock=clock),
                lookups=pacer(f"user look-ups of {admin.client_id}", target.lookup_rate_limit),
                creations=admin_tier2,
                clock=clock,
            )
        self.sessions: JwtSessionClient | None = None
        if target.jwt is not None:
            self.sessions = JwtSessionClient(
                self.http,
                LoginJwtSigner(target.jwt, clock=clock),
                pacer("JWT logins", target.token_rate_limit),
                web_integration_id=target.web_integration_id,
                clock=clock,
            )
        self.pacers = pacers
        self.closed = False

    async def access_token(self, identity: CloudIdentity) -> AccessToken:
        """An impersonation access token for `identity` (Qlik's recommended embedding path)."""
        if self.tokens is None:
            raise ConfigurationError("impersonation needs an OAuth client", field="oauth")
        if self.provisioner is not None:
            await self.provisioner.ensure(identity)
        try:
            return await self.tokens.impersonate(identity)
        except CloudUserNotFound:
            if self.provisioner is None:
                raise
            # Known here, gone there (deleted in the tenant): create it again, once.
            self.provisioner.forget(identity.subject)
            await self.provisioner.ensure(identity)
            return await self.tokens.impersonate(identity)

    async def revoke_token(self, token: AccessToken | str) -> None:
        """Revoke an impersonation token `access_token` returned (`POST /oauth/revoke`)."""
        if self.tokens is None:
            raise ConfigurationError("revoking tokens needs an OAuth client", field="oauth")
        await self.tokens.revoke(token)

    async def login(self, identity: CloudIdentity) -> CloudCookieSession:
        """A tenant cookie session for `identity` through a JWT login (the cookie mode)."""
        if self.sessions is None:
            raise ConfigurationError("the cookie mode needs JWT signing settings", field="jwt")
        return await self.sessions.login(identity)

    async def csrf_token(self, session: CloudCookieSession) -> str | None:
        """The CSRF token of `session` (for the engine WebSocket); None once the session ended."""
        if self.sessions is None:
            raise ConfigurationError("the cookie mode needs JWT signing settings", field="jwt")
        return await self.sessions.csrf_token(session)

    async def aclose(self) -> None:
        self.closed = True
        await self.http.aclose()

    async def __aenter__(self) -> QlikCloudClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
