"""The session-acquisition seam: how a Qlik session is obtained for an identity.

Strategies: `HeaderAuth` (header virtual proxy), `SessionApiAuth` and `TicketAuth` (QPS REST API with
client certificates). The middleware calls `login` once per user (single-flight), sends
`upstream_headers` on every forwarded request, and `logout` when the app logs the user out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import httpx2 as httpx

from ..identity import QlikIdentity
from ..stores.base import QlikSession

__all__ = ["AuthStrategy", "LoginContext"]


@dataclass(frozen=True, slots=True)
class LoginContext:
    """What a strategy needs to talk to the Qlik proxy port.

    `client` is the pooled, cookie-jar-free client for the proxy port; `proxy_url` its base
    (`http://host:port`, no prefix); `prefix` the virtual proxy prefix (no slashes, may be "");
    `host` the `Host` header Qlik must see; `cookie_name` the VP's configured session cookie name
    (without the `-HTTP` suffix Qlik adds on plain http).
    """

    client: httpx.AsyncClient
    proxy_url: str
    prefix: str
    host: str
    cookie_name: str

    @property
    def base_path(self) -> str:
        return f"/{self.prefix}/" if self.prefix else "/"

    @property
    def is_plain_http(self) -> bool:
        return self.proxy_url.startswith("http://")

    @property
    def effective_cookie_name(self) -> str:
        """Qlik appends `-HTTP` to the cookie name when the proxy is reached over plain http."""
        return self.cookie_name + "-HTTP" if self.is_plain_http else self.cookie_name


@runtime_checkable
class AuthStrategy(Protocol):
    """How to turn a validated identity into a Qlik proxy session.

    `identity_headers` names every header the strategy uses to tell Qlik who the user is (the
    identity header of a header virtual proxy; none for the QPS API strategies): the middleware
    strips each of them, in every spelling, from every browser request.
    """

    identity_headers: tuple[str, ...]

    def check_identity(self, identity: QlikIdentity) -> None:
        """Raise `InvalidIdentity`/`ConfigurationError` if this strategy cannot carry `identity`."""

    async def login(self, identity: QlikIdentity, ctx: LoginContext) -> QlikSession:
        """Create a Qlik session for `identity` and return it; raise a `QlikError` on failure."""

    async def logout(
        self, identity: QlikIdentity, session: QlikSession | None, ctx: LoginContext
    ) -> None:
        """Tell Qlik to end `session` (or every session of the user, where the strategy can)."""

    def upstream_headers(self, identity: QlikIdentity) -> list[tuple[bytes, bytes]]:
        """Headers added to every request forwarded for `identity` (header auth: the identity)."""

    async def aclose(self) -> None:
        """Release clients the strategy owns."""
