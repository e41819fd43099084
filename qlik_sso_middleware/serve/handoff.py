"""Signed identity handoff: how an app that cannot host the middleware tells `qlik-sso serve` who
its user is.

    # in the app, after its own login (any language can do the same with itsdangerous' format):
    token = Handoff(["newest-key", "older-key"]).issue(QlikIdentity("ACME", "alice"), next="/")
    redirect(f"https://portal.acme.com/_qlik_sso/handoff?token={token}")

`qlik-sso serve` verifies the token, sets its own signed session cookie and redirects to `next`.
Keys rotate like itsdangerous' key lists: the first key given (newest) signs, every key verifies,
so a new key can be rolled out before the old one is removed. Tokens expire after `max_age`
seconds (default 60) and each is accepted once per process (a nonce is remembered until expiry).

Hazards: a token is a bearer credential for its lifetime; keep `max_age` short, send it only over
https, and never log it (the serve app strips it from anything it logs). With several `serve`
processes the once-only guarantee holds per process: a replay within `max_age` on another process
is accepted, which the short expiry bounds. Keys must be long random strings (32+ bytes).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import ConfigurationError, InvalidIdentity, NotAuthenticated
from ..identity import QlikIdentity

__all__ = [
    "HANDOFF_SALT",
    "SESSION_SALT",
    "Handoff",
    "HandoffRejected",
    "SessionCookie",
    "VerifiedHandoff",
]

HANDOFF_SALT = "qlik-sso.handoff"
SESSION_SALT = "qlik-sso.session"
_MIN_KEY_LENGTH = 16
_MAX_NONCES = 100_000


class HandoffRejected(NotAuthenticated):
    """The token is forged, expired, replayed or malformed (the message says which, never the
    token itself)."""


def _serializer(keys: Sequence[str], salt: str) -> URLSafeTimedSerializer:
    if isinstance(keys, str) or not keys:
        raise ConfigurationError("give a list of signing keys, newest first", field="keys")
    for key in keys:
        if not isinstance(key, str) or len(key) < _MIN_KEY_LENGTH:
            raise ConfigurationError(
                f"every key must be a random string of at least {_MIN_KEY_LENGTH} characters",
                field="keys",
            )
    # itsdangerous signs with the LAST key of the list and verifies with all of them.
    return URLSafeTimedSerializer(list(reversed(keys)), salt=salt)


def _identity_payload(identity: QlikIdentity) -> dict[str, Any]:
    return {"ud": identity.user_directory, "id": identity.user_id, "at": identity.attributes}


def _identity_from(payload: Any) -> QlikIdentity:
    if not isinstance(payload, dict):
        raise InvalidIdentity("payload is not an object")
    attributes = [tuple(pair) for pair in payload.get("at") or ()]
    return QlikIdentity(payload.get("ud"), payload.get("id"), attributes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class VerifiedHandoff:
    """What a valid token carried: who, and the local path to continue to."""

    identity: QlikIdentity
    next: str


class Handoff:
    """Issue (app side) and verify (proxy side) identity handoff tokens.

    `clock` (seconds) is injectable for tests of expiry and replay bookkeeping.
    """

    def __init__(
        self,
        keys: Sequence[str],
        *,
        max_age: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(max_age, bool) or not isinstance(max_age, int) or not 1 <= max_age <= 3600:
            raise ConfigurationError("must be 1..3600 seconds", field="handoff_max_age")
        self._serializer = _serializer(keys, HANDOFF_SALT)
        self.max_age = max_age
        self._clock = clock
        self._used: OrderedDict[str, float] = OrderedDict()

    def issue(self, identity: QlikIdentity, *, next: str = "/") -> str:
        """A token for `identity`; after verification the proxy redirects to the local path
        `next`."""
        payload = _identity_payload(identity) | {"next": next, "n": secrets.token_urlsafe(12)}
        return str(self._serializer.dumps(payload))

    def verify(self, token: str) -> VerifiedHandoff:
        """The identity and `next` path; raises `HandoffRejected` (or `InvalidIdentity`)."""
        now = self._clock()
        try:
            payload, signed_at = self._serializer.loads(
                token, max_age=self.max_age, return_timestamp=True
            )
        except SignatureExpired:
            raise HandoffRejected(f"handoff token expired (older than {self.max_age} s)") from None
        except BadSignature:
            raise HandoffRejected("handoff token has a bad signature (unknown key?)") from None
        # itsdangerous checks age against the wall clock; an injected clock is checked too.
        if now - signed_at.timestamp() > self.max_age:
            raise HandoffRejected(f"handoff token expired (older than {self.max_age} s)")
        nonce = payload.get("n") if isinstance(payload, dict) else None
        if not isinstance(nonce, str):
            raise HandoffRejected("handoff token carries no nonce")
        self._forget_expired(now)
        if nonce in self._used:
            raise HandoffRejected("handoff token was already used")
        self._used[nonce] = now + self.max_age
        if len(self._used) > _MAX_NONCES:
            self._used.popitem(last=False)
        identity = _identity_from(payload)
        return VerifiedHandoff(identity, _local_path(payload.get("next")))

    def _forget_expired(self, now: float) -> None:
        while self._used:
            nonce, until = next(iter(self._used.items()))
            if until > now:
                break
            del self._used[nonce]


class SessionCookie:
    """The proxy's own session cookie: a signed identity, valid `max_age` seconds (keys rotate
    like handoff keys, with another salt so a handoff token is never a valid cookie)."""

    def __init__(self, keys: Sequence[str], *, max_age: int) -> None:
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 60:
            raise ConfigurationError("must be at least 60 seconds", field="session_max_age")
        self._serializer = _serializer(keys, SESSION_SALT)
        self.max_age = max_age

    def dumps(self, identity: QlikIdentity) -> str:
        return str(self._serializer.dumps(_identity_payload(identity)))

    def loads(self, value: str) -> QlikIdentity | None:
        """The identity, or None for a missing, forged or expired cookie."""
        try:
            return _identity_from(self._serializer.loads(value, max_age=self.max_age))
        except (BadSignature, InvalidIdentity, TypeError, ValueError):
            return None


def _local_path(value: object) -> str:
    # Only same-site paths: "//evil.example" or "/\\evil.example" would leave the site.
    if not isinstance(value, str) or any(ch in value for ch in "\r\n\t"):
        return "/"
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"
