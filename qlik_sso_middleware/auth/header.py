"""`HeaderAuth`: sessions from a header-authentication virtual proxy.

Hazard: a header virtual proxy trusts whoever can reach it. It must be reachable only through this
middleware (firewall QPS), and the middleware strips every spelling of the header from browsers.
"""

from __future__ import annotations

import re

from ..errors import ConfigurationError, InvalidIdentity
from ..identity import QlikIdentity, literal_pattern
from ..stores.base import QlikSession
from ._proxy_login import login_via_proxy
from .base import LoginContext

__all__ = ["HeaderAuth"]

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Qlik refuses header names that contain these (they are its own injected headers).
_RESERVED = (
    "x-qlik-security",
    "x-qlik-user",
    "x-qlik-proxysession",
    "x-qlik-proxyid",
    "x-qlik-trace",
    "x-qlik-app",
    "x-qlik-capabilities",
)


class HeaderAuth:
    """Log in by sending the identity in `header_name`, as a header virtual proxy expects.

    `static_user_directory=None` means the VP uses a *dynamic* user directory with `pattern`, which
    may be pasted from the QMC as it shows it (`$ud\\\\$id`, the backslash escaped) or written
    unescaped (`$ud\\$id`): both send `ACME\\alice` (`identity.literal_pattern`). Otherwise the header carries only the user id and
    identities from any other directory are refused. Attributes cannot travel in a header: an
    identity with attributes is a configuration error (use `SessionApiAuth` or `TicketAuth`).
    """

    def __init__(
        self,
        header_name: str = "hdr-usr",
        *,
        static_user_directory: str | None = None,
        pattern: str = "$ud\\$id",
    ) -> None:
        if not isinstance(header_name, str) or not header_name.isascii():
            raise ConfigurationError("must be a US-ASCII header name", field="header_name")
        if not _TOKEN.match(header_name):
            raise ConfigurationError(
                f"{header_name!r} is not a valid header name", field="header_name"
            )
        folded = header_name.lower()
        if any(r in folded for r in _RESERVED):
            raise ConfigurationError(
                f"{header_name!r} contains a name Qlik reserves for itself (X-Qlik-User, "
                "X-Qlik-Security, ...); Qlik rejects such a virtual proxy",
                field="header_name",
            )
        if not isinstance(pattern, str):
            raise ConfigurationError("must be a string such as '$ud\\\\$id'", field="pattern")
        pattern = literal_pattern(pattern)
        if static_user_directory is None and (
            pattern.count("$ud") != 1 or pattern.count("$id") != 1
        ):
            raise ConfigurationError(
                f"{pattern!r} must contain $ud and $id once each (the QMC's '$ud\\\\$id')",
                field="pattern",
            )
        self.header_name = header_name
        self.identity_headers: tuple[str, ...] = (header_name,)
        self.static_user_directory = static_user_directory
        #: The pattern as header text (QMC notation unescaped); `$id` with a static directory.
        self.pattern = "$id" if static_user_directory is not None else pattern
        self._header_key = header_name.lower().encode("ascii")

    def __repr__(self) -> str:
        return f"HeaderAuth(header_name={self.header_name!r})"

    def check_identity(self, identity: QlikIdentity) -> None:
        if identity.attributes:
            raise ConfigurationError(
                "header authentication cannot carry attributes (groups, roles); use SessionApiAuth "
                "or TicketAuth, or have the resolver return none",
                field="auth",
            )
        if (
            self.static_user_directory is not None
            and identity.user_directory.lower() != self.static_user_directory.lower()
        ):
            raise InvalidIdentity(
                f"this virtual proxy has the static user directory {self.static_user_directory!r}"
            )
        identity.header_value(self.pattern)  # raises InvalidIdentity for non-ASCII

    async def login(self, identity: QlikIdentity, ctx: LoginContext) -> QlikSession:
        return await login_via_proxy(
            identity,
            ctx,
            headers={self.header_name: identity.header_value(self.pattern)},
            how=f"the header {self.header_name!r}",
        )

    async def logout(
        self, identity: QlikIdentity, session: QlikSession | None, ctx: LoginContext
    ) -> None:
        if session is None:
            return
        # The personal API ends exactly the session whose cookie we present.
        await ctx.client.delete(
            ctx.proxy_url + ctx.base_path + "qps/user",
            headers={
                "host": ctx.host,
                "cookie": session.cookie_header(),
                self.header_name: identity.header_value(self.pattern),
            },
        )

    def upstream_headers(self, identity: QlikIdentity) -> list[tuple[bytes, bytes]]:
        # Qlik: "the header must be included in every request"; ASCII was checked in check_identity.
        return [(self._header_key, identity.header_value(self.pattern).encode("ascii"))]

    async def aclose(self) -> None:
        return None
