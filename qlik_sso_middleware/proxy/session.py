"""`ForwardingSession`: what the forwarders need from the user's Qlik session, and nothing more.

The forwarders move bytes; everything about the session (which one is cached, when Qlik has
forgotten it, a cookie Qlik reissued, the WebSocket CSRF token) is decided by the implementation,
`sessions.UserSession`, one per request. The forwarders never see a store, a strategy or `QlikSSO`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .engine import UpstreamResponse
from .request import ProxiedRequest

__all__ = ["ForwardingSession"]


class ForwardingSession(Protocol):
    """One request's view of the user's Qlik session on one virtual proxy.

    Call `open` first; the other members then refer to the session currently held, which
    `review`, `websocket_token` and `renew` may replace.
    """

    async def open(self) -> None:
        """Get the user's session: the cached one, else a login (raises `QlikSSOError`s)."""

    def cookie_header(self) -> bytes:
        """`<cookie name>=<value>` of the session held."""

    def identity_headers(self) -> Sequence[tuple[bytes, bytes]]:
        """Headers the strategy adds to every forwarded request (the identity header, or none)."""

    async def review(self, response: UpstreamResponse, req: ProxiedRequest) -> bool:
        """Read Qlik's answer to `req` for what it says about the session.

        True: Qlik had forgotten the session, a new one is held, send `req` again (once, and only
        when it is idempotent and had no body). Raises `RequestRefused` (503) when the session was
        renewed but `req` cannot be repeated. A cookie Qlik reissued in the answer is adopted.
        """

    async def websocket_token(self) -> str | None:
        """The `qlik-csrf-token` for the session held (None: this Qlik needs none)."""

    async def handshake_refused(self) -> bool:
        """Qlik refused the WebSocket handshake (401/403). True: the token came from the cache and
        may be stale (Qlik restarted): it is dropped, connect once more with a fresh one."""

    async def renew(self) -> None:
        """Qlik said the session is gone (`mustAuthenticate`): hold a new one."""

    async def ended(self) -> None:
        """Qlik ended the session (`OnSessionClosed`, ...): the next request gets a new one."""
