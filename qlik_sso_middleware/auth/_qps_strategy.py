"""What the two QPS-API strategies share: the client, logout, and listing a user's sessions.

`SessionApiAuth` and `TicketAuth` differ only in how `login` gets the cookie; everything else about
a user's Qlik sessions (end one, end all, list them for an admin) is the same QPS calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any, Literal

from ..errors import ConfigurationError
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from ._qps import QPSClient, QPSSettings, field_of
from .base import LoginContext

__all__ = ["LogoutScope", "QPSStrategy"]


LogoutScope = Literal["user", "session"]


def _public_session(session: dict[str, Any]) -> dict[str, Any]:
    """A QPS session struct for admin screens: the live session id replaced by a fingerprint."""
    shown = {
        k: v for k, v in session.items() if not (isinstance(k, str) and k.lower() == "sessionid")
    }
    session_id = field_of(session, "SessionId")
    if isinstance(session_id, str):
        shown["SessionFingerprint"] = hashlib.sha256(session_id.encode()).hexdigest()[:16]
    return shown


class QPSStrategy:
    """What `SessionApiAuth` and `TicketAuth` share: the QPS client, logout and session listing.

    `qps` is either settings (the strategy builds and owns its client) or a `QPSClient` shared
    with other strategies (then the caller closes it). `logout_scope="user"` (default) makes
    `logout` end every Qlik session of the user on this virtual proxy (`DELETE user/{ud}/{id}`);
    `"session"` ends only the session the middleware holds (`DELETE session/{id}`).
    """

    #: The QPS API carries the identity in its JSON body: no header to strip from browsers.
    identity_headers: tuple[str, ...] = ()

    def __init__(
        self,
        qps: QPSSettings | QPSClient,
        *,
        logout_scope: LogoutScope = "user",
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if logout_scope not in ("user", "session"):
            raise ConfigurationError("must be 'user' or 'session'", field="logout_scope")
        if isinstance(qps, QPSClient):
            self.qps, self._owns_client = qps, False
        elif isinstance(qps, QPSSettings):
            self.qps, self._owns_client = QPSClient(qps, now=now), True
        else:
            raise ConfigurationError("a QPSSettings or a QPSClient", field="qps")
        self.logout_scope: LogoutScope = logout_scope

    def _check_prefix(self, prefix: str) -> None:
        # A session lives on one virtual proxy: one created through another VP's API would come
        # back with a cookie the proxied VP does not know.
        if prefix != self.qps.settings.prefix:
            raise ConfigurationError(
                f"the QPS API is set up for the virtual proxy {self.qps.settings.prefix!r} but "
                f"the proxied virtual proxy is {prefix!r}; they must be the same",
                field="prefix",
            )

    def check_identity(self, identity: QlikIdentity) -> None:
        """Any valid identity works: attributes travel in the JSON body, non-ASCII is fine."""

    def upstream_headers(self, identity: QlikIdentity) -> list[tuple[bytes, bytes]]:
        """Nothing: the Qlik session cookie alone identifies the user."""
        return []

    async def logout(
        self, identity: QlikIdentity, session: QlikSession | None, ctx: LoginContext
    ) -> None:
        """End the user's Qlik sessions (scope "user") or just `session` (scope "session").

        Safe when the user has no session: QPS answers with an empty list or 404.
        """
        if self.logout_scope == "session":
            if session is not None:
                await self.qps.delete_session(session.cookie_value)
            return
        await self.qps.delete_user_sessions(identity)

    async def logout_everywhere(self, identity: QlikIdentity) -> int:
        """End every Qlik session of `identity` on this virtual proxy; returns how many ended."""
        return len(await self.qps.delete_user_sessions(identity))

    async def list_sessions(self, identity: QlikIdentity) -> list[dict[str, Any]]:
        """The user's Qlik sessions on this virtual proxy, for admin screens.

        Each is QPS's struct (`UserDirectory`, `UserId`, `Attributes`, ...) with `SessionId`
        replaced by `SessionFingerprint` (16 hex of its SHA-256): a session id is a live cookie
        value and must not reach a screen or a log.
        """
        return [_public_session(s) for s in await self.qps.get_user_sessions(identity)]

    async def probe(self) -> None:
        """One harmless QPS call that proves the API, both certificates and xrfkey work."""
        await self.qps.probe()

    async def aclose(self) -> None:
        if self._owns_client:
            await self.qps.aclose()
