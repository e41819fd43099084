"""`TrustedHeaderResolver`: identity set by an upstream authenticating proxy, trusted by peer address.

Hazard: a header is only as trustworthy as the hop that set it. The header is read only when the
TCP peer is in `trusted_networks` (default: loopback only), every other request is treated as
anonymous, and the middleware strips the header before anything reaches Qlik anyway.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection

from ..errors import ConfigurationError
from ..identity import QlikIdentity
from .base import Resolution

__all__ = ["TrustedHeaderResolver"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedHeaderResolver:
    """Read the user from `header` (e.g. `X-Remote-User: alice` or `ACME\\alice`).

    With `user_directory` set the header holds only the user id; without it, the header must hold
    `DIRECTORY\\user`. Duplicated headers are refused (ambiguous, a classic smuggling trick).
    """

    def __init__(
        self,
        header: str,
        *,
        user_directory: str | None = None,
        trusted_networks: Sequence[str] = ("127.0.0.0/8", "::1/128"),
    ) -> None:
        if not header or not header.isascii():
            raise ConfigurationError("must be a US-ASCII header name", field="header")
        try:
            self._networks: tuple[Network, ...] = tuple(
                ipaddress.ip_network(n, strict=False) for n in trusted_networks
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc), field="trusted_networks") from exc
        self._header = header.lower()
        #: Stripped by the middleware from every request it forwards to Qlik.
        self.trusted_headers: tuple[str, ...] = (header,)
        self._directory = user_directory

    def _peer_trusted(self, conn: HTTPConnection) -> bool:
        client = conn.client
        if client is None:
            return False
        try:
            address = ipaddress.ip_address(client.host)
        except ValueError:
            return False
        return any(address in net for net in self._networks)

    async def resolve(self, conn: HTTPConnection) -> Resolution:
        if not self._peer_trusted(conn):
            return None
        values = conn.headers.getlist(self._header)
        if len(values) != 1 or not values[0].strip():
            return None
        value = values[0].strip()
        if self._directory is not None:
            return QlikIdentity(self._directory, value)
        return QlikIdentity.parse(value)
