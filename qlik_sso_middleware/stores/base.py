"""The session store contract: where one Qlik session per user lives between requests.

A store maps a *session key* (Qlik server + virtual proxy + user directory + user id) to a
`QlikSession`, with a sliding TTL, a per-key lock for single-flight logins, and a per-user index so
that "log this user out everywhere" finds every key of the user. Every store passes the one contract
suite in `tests/stores/test_contract.py`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["QlikSession", "SessionStore"]


@dataclass(frozen=True, slots=True)
class QlikSession:
    """A Qlik proxy session held server-side on behalf of one user.

    `cookie_name` is the exact name Qlik set (including the `-HTTP` suffix on plain http);
    `cookie_value` is the secret and is hidden from `repr` so it cannot leak into logs.
    `fingerprint` is `QlikIdentity.fingerprint` of the identity the session was made for: Qlik
    reads the attributes only at login, so a session whose fingerprint differs from the user's
    current attributes must be replaced (empty: no attributes).
    `expires_at` is the wall-clock second after which the credential is worthless whatever the
    store's TTL says (a Qlik Cloud access token's expiry); None for sessions that only expire
    by inactivity.

    The same record holds every credential kept for a user: a Qlik Sense session cookie, a Qlik
    Cloud session's cookies (`cookie_value` is then the whole `Cookie` header) or a Qlik Cloud
    access token (`cookie_value` is the token); `cookie_name` says which.
    """

    cookie_name: str
    cookie_value: str = field(repr=False)
    user_key: str
    created_at: float
    fingerprint: str = ""
    expires_at: float | None = None

    def cookie_header(self) -> str:
        return f"{self.cookie_name}={self.cookie_value}"


@runtime_checkable
class SessionStore(Protocol):
    """Narrow, async store contract. Errors talking to a backend raise `StoreUnavailable`."""

    async def get(self, key: str) -> QlikSession | None:
        """The live session for `key`, sliding its TTL; `None` if absent, expired or unreadable."""

    async def set(self, key: str, session: QlikSession, ttl: float) -> None:
        """Store `session` under `key` for `ttl` seconds (sliding) and index it under its user."""

    async def delete(self, key: str) -> QlikSession | None:
        """Remove `key`; return what was there (for telling Qlik to end it)."""

    async def keys_for_user(self, user_key: str) -> list[str]:
        """Every live key stored for `user_key` (across servers and virtual proxies)."""

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Exclusive lock on `key` across everything sharing this store (single-flight login).

        Raises `StoreUnavailable` when it cannot be taken within the store's wait time.
        """

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
