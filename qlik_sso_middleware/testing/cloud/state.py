"""The simulated tenant's memory: users, access tokens, cookie sessions, used JWT ids, the log.

Everything lives on the simulator's event loop. Tokens and cookie values are random and opaque
(Qlik says to treat access tokens as opaque); the log records which user and client a request was
for, never a secret's value.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .tenant import CloudUser, users_by_subject

__all__ = ["AccessToken", "CloudRequest", "CloudSession", "CloudState"]


@dataclass
class CloudRequest:
    """One HTTP request or WebSocket handshake the tenant received, and its answer.

    `headers` are as received except `authorization` and `cookie`, whose values are replaced by
    "<redacted>" (a test asserts on who was signed in, through `user`, not on credentials).
    """

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    time: float
    websocket: bool = False
    status: int = 0
    client_id: str | None = None
    grant_type: str | None = None
    #: subject of the user the request was made for (impersonated, logged in, or token owner)
    user: str | None = None

    def header(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key == lowered]


@dataclass
class AccessToken:
    """An issued access token. `purpose`: "access", or "websocket"/"webresource" (exchanged)."""

    value: str = field(repr=False)
    client_id: str
    user_id: str | None
    scopes: tuple[str, ...]
    expires_at: float
    purpose: str = "access"


@dataclass
class CloudSession:
    """A cookie session made by `/login/jwt-session` (`eas.sid` + `_csrfToken`, both signed)."""

    id: str = field(repr=False)
    user_id: str
    csrf_token: str = field(repr=False)
    created_at: float
    last_seen: float


class CloudState:
    """Users, tokens and sessions of one tenant, with the injectable wall clock."""

    def __init__(
        self,
        users: Sequence[CloudUser],
        clock: Callable[[], float],
        *,
        session_idle_timeout: float,
    ) -> None:
        self.clock = clock
        self.tenant_id = secrets.token_urlsafe(24)
        self._cookie_key = secrets.token_bytes(32)
        self.users_by_subject = users_by_subject(users)
        self.tokens: dict[str, AccessToken] = {}
        self.sessions: dict[str, CloudSession] = {}
        self.used_jti: dict[tuple[str, str], float] = {}
        self.requests: list[CloudRequest] = []
        #: impersonation tokens issued, per user subject
        self.issued: dict[str, int] = {}
        #: impersonation tokens revoked through `/oauth/revoke`, per user subject
        self.revoked: dict[str, int] = {}
        #: engine sessions opened: (user id, app id, identity)
        self.engine_sessions: set[tuple[str, str, str]] = set()
        self.session_idle_timeout = session_idle_timeout

    # -- users ----------------------------------------------------------------------------------

    def user_by_id(self, user_id: str) -> CloudUser | None:
        return next((u for u in self.users_by_subject.values() if u.id == user_id), None)

    def find_user(self, field_name: str, value: str) -> CloudUser | None:
        """The user whose `subject`, `userId` or `email` is `value` (as `user_lookup` names them)."""
        if field_name == "subject":
            return self.users_by_subject.get(value)
        if field_name == "userId":
            return self.user_by_id(value)
        if field_name == "email":
            lowered = value.lower()
            return next(
                (u for u in self.users_by_subject.values() if u.email.lower() == lowered), None
            )
        return None

    def add_user(self, user: CloudUser) -> CloudUser:
        if user.subject in self.users_by_subject:
            raise ValueError(f"a user with subject {user.subject!r} exists")
        self.users_by_subject[user.subject] = user
        return user

    # -- tokens ---------------------------------------------------------------------------------

    def issue(
        self,
        client_id: str,
        user: CloudUser | None,
        scopes: tuple[str, ...],
        lifetime: float,
        purpose: str = "access",
    ) -> AccessToken:
        token = AccessToken(
            value=secrets.token_urlsafe(32),
            client_id=client_id,
            user_id=user.id if user else None,
            scopes=scopes,
            expires_at=self.clock() + lifetime,
            purpose=purpose,
        )
        self.tokens[token.value] = token
        if user is not None and purpose == "access":
            self.issued[user.subject] = self.issued.get(user.subject, 0) + 1
        return token

    def token(self, value: str, purposes: tuple[str, ...] = ("access",)) -> AccessToken | None:
        """The live token `value` of one of `purposes` (None: unknown, expired or other purpose)."""
        token = self.tokens.get(value)
        if token is None or token.purpose not in purposes:
            return None
        if token.expires_at <= self.clock():
            del self.tokens[value]
            return None
        return token

    def revoke(self, value: str, client_id: str) -> AccessToken | None:
        """End the live token `value` if it was issued to `client_id` (RFC 7009 §2.1: a client
        revokes only its own tokens); returns the token revoked, None when nothing was."""
        token = self.token(value, ("access", "websocket", "webresource"))
        if token is None or token.client_id != client_id:
            return None
        del self.tokens[value]
        user = self.user_by_id(token.user_id) if token.user_id else None
        if user is not None and token.purpose == "access":
            self.revoked[user.subject] = self.revoked.get(user.subject, 0) + 1
        return token

    # -- cookie sessions ------------------------------------------------------------------------

    def sign(self, value: str) -> str:
        """The `.sig` companion cookie value (keygrip-style HMAC, shortened like Qlik's)."""
        return hmac.new(self._cookie_key, value.encode(), "sha256").hexdigest()[:27]

    def open_session(self, user: CloudUser) -> CloudSession:
        now = self.clock()
        session = CloudSession(
            id=secrets.token_urlsafe(24),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(27),
            created_at=now,
            last_seen=now,
        )
        self.sessions[session.id] = session
        return session

    def session(self, sid: str | None, signature: str | None) -> CloudSession | None:
        """The live session of cookie `eas.sid` whose `eas.sid.sig` matches; slides its timeout."""
        if not sid or not signature or not hmac.compare_digest(self.sign(sid), signature):
            return None
        session = self.sessions.get(sid)
        if session is None:
            return None
        now = self.clock()
        if session.last_seen + self.session_idle_timeout <= now:
            del self.sessions[sid]
            return None
        session.last_seen = now
        return session

    def remember_jti(self, issuer: str, jti: str, expires: float) -> None:
        now = self.clock()
        # A token is refused on its exp anyway; keep its jti a while longer for any clock leeway.
        for key in [k for k, exp in self.used_jti.items() if exp + 600 <= now]:
            del self.used_jti[key]
        self.used_jti[(issuer, jti)] = expires
