"""`SessionApiAuth`: a Qlik session created with one QPS API call (the recommended strategy).

We generate the session id (128 bits from `secrets`), hand it to QPS with `POST session` together
with the user's attributes, and use it as the value of the virtual proxy's session cookie. One
call, no redirects, no ticket, no identity header that a misrouted request could forge.

Hazard: the session id *is* the cookie value; it is never logged and `QlikSession` hides it from
`repr`.
"""

from __future__ import annotations

import logging
import secrets
import time

from ..identity import QlikIdentity
from ..stores.base import QlikSession
from ._qps import QPSClient, QPSSettings
from ._qps_strategy import LogoutScope, QPSStrategy
from .base import LoginContext

__all__ = ["SessionApiAuth"]

logger = logging.getLogger("qlik_sso_middleware.auth")


class SessionApiAuth(QPSStrategy):
    """Log users in with the QPS session API (`POST /qps/<prefix>/session`).

    `qps`: `QPSSettings` (the strategy builds and owns a client; certificate problems raise
    `CertificateError` here, at construction) or a shared `QPSClient`. `logout_scope`: "user"
    (default) ends every session of the user on the virtual proxy, "session" only the one held.
    The virtual proxy behind the middleware must be the one `qps.prefix` names.
    """

    def __init__(self, qps: QPSSettings | QPSClient, *, logout_scope: LogoutScope = "user") -> None:
        super().__init__(qps, logout_scope=logout_scope)

    async def login(self, identity: QlikIdentity, ctx: LoginContext) -> QlikSession:
        """Create the session with `POST session`; the cookie is `ctx.effective_cookie_name`.

        Raises `QPSError` (and subclasses), `QlikAccessDenied` (too many sessions),
        `QlikUnavailable` or `QlikTimeout`; nothing is returned (so nothing cached) on failure.
        """
        self._check_prefix(ctx.prefix)
        session_id = secrets.token_hex(16)
        await self.qps.create_session(identity, session_id)
        logger.debug("Qlik session created for %s through the session API", identity)
        return QlikSession(ctx.effective_cookie_name, session_id, identity.user_key(), time.time())
