"""`TenantResolver`: one app, several tenants, each with its own user directory and Qlik target.

The tenant comes from the request (host name, subdomain, first path segment, or any function such
as a JWT claim); the user id comes from an inner resolver. The result is bound to the tenant's target
name, and the middleware refuses a request whose path belongs to another target, so one tenant's
user can never reach another tenant's Qlik.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from ..errors import ConfigurationError
from ..identity import QlikIdentity
from .base import Resolution, Resolved, ResolverLike, as_resolver, trusted_headers

__all__ = ["Tenant", "TenantResolver", "tenant_from_host", "tenant_from_subdomain"]


@dataclass(frozen=True, slots=True)
class Tenant:
    """`user_directory` for the tenant's users; `target` names the Qlik target (None: the default)."""

    user_directory: str
    target: str | None = None


def tenant_from_host(conn: HTTPConnection) -> str | None:
    return (conn.url.hostname or "").lower() or None


def tenant_from_subdomain(conn: HTTPConnection) -> str | None:
    host = (conn.url.hostname or "").lower()
    return host.split(".", 1)[0] if "." in host else None


class TenantResolver:
    """Maps `tenant_of(conn)` through `tenants`; unknown tenants resolve to nobody.

    Hazard: the tenant comes from the request (by default its `Host`, which any non-browser client
    sets at will) and the user id from `user`. If the app's session is valid on every host (one
    signing key), alice of tenant A replaying her cookie with `Host: b...` becomes tenant B's
    alice. `user` must therefore refuse a session that was not opened on the request's tenant
    (record the tenant in the session at login), as `examples/tenants/app.py` does. An inner
    resolver that returns the user's *own* tenant directory (or target) gets that check here: an
    identity from another tenant's directory, or bound to another target, resolves to nobody.
    """

    def __init__(
        self,
        tenants: Mapping[str, Tenant],
        user: ResolverLike,
        *,
        tenant_of: Callable[[HTTPConnection], str | None] = tenant_from_host,
    ) -> None:
        if not tenants:
            raise ConfigurationError("needs at least one tenant", field="tenants")
        self._tenants = {k.lower(): v for k, v in tenants.items()}
        self._directories = {t.user_directory.lower() for t in tenants.values()}
        self._user = as_resolver(user)
        self.trusted_headers: tuple[str, ...] = trusted_headers(self._user)
        self._tenant_of = tenant_of

    async def resolve(self, conn: HTTPConnection) -> Resolution:
        name = self._tenant_of(conn)
        tenant = self._tenants.get(name.lower()) if name else None
        if tenant is None:
            return None
        inner = await self._user.resolve(conn)
        if inner is None:
            return None
        identity = inner.identity if isinstance(inner, Resolved) else inner
        if isinstance(inner, Resolved) and inner.target not in (None, tenant.target):
            return None  # a session bound to another tenant's Qlik, replayed on this host
        directory = identity.user_directory.lower()
        if directory in self._directories and directory != tenant.user_directory.lower():
            return None  # a user of another tenant, replayed on this host
        # The tenant decides the directory: the inner resolver only says who the user is.
        bound = QlikIdentity(tenant.user_directory, identity.user_id, identity.attributes)
        return Resolved(bound, tenant.target)
