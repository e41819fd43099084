"""What a simulated Qlik Cloud tenant is configured with: IdPs, OAuth clients, web integrations, users.

These mirror the tenant's management console (see docs/qlik-cloud.md for the sources):

- `JwtIdentityProvider`: Identity provider > JWT: the public key (certificate), issuer and key id
  a `/login/jwt-session` JWT must match.
- `OAuthClient`: an OAuth client (appType `web`) with its secret, allowed grant types
  (`client_credentials`, `urn:qlik:oauth:user-impersonation`) and allowed scopes.
- `WebIntegration`: a web integration id and its allow list of exact origins (no wildcards).
- `CloudUser`: a user of the tenant, found by `subject` (the IdP's identifier), `id` or `email`.
- `TierLimit`: a rate-limit tier, `requests` per `window` seconds per principal.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "ADMIN_SCOPES",
    "GRANT_CLIENT_CREDENTIALS",
    "GRANT_IMPERSONATION",
    "GRANT_TOKEN_EXCHANGE",
    "JWT_AUDIENCE",
    "CloudUser",
    "JwtIdentityProvider",
    "OAuthClient",
    "TierLimit",
    "WebIntegration",
]

#: The `aud` every `/login/jwt-session` JWT must carry (qlik.dev, Login API).
JWT_AUDIENCE = "qlik.api/login/jwt-session"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_IMPERSONATION = "urn:qlik:oauth:user-impersonation"
GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
#: Scopes that open the users API to a machine token (`admin_classic` is "full administrator
#: access"; `admin.users` follows the `admin.<area>` family of the scopes reference).
ADMIN_SCOPES = frozenset({"admin_classic", "admin.users"})


@dataclass(frozen=True)
class JwtIdentityProvider:
    """A JWT identity provider: `public_key` is the PEM public key or X.509 certificate.

    `algorithms`: what the tenant accepts. Qlik asks for an algorithm "other than HS" and its
    tutorials use RS256; ES/PS variants are not documented, so only RSA is on by default.
    """

    issuer: str
    key_id: str
    public_key: bytes = field(repr=False)
    algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512")


@dataclass(frozen=True)
class OAuthClient:
    """An OAuth client (`appType: web`). The secret is compared in constant time."""

    client_id: str
    client_secret: str = field(repr=False)
    grant_types: tuple[str, ...] = (GRANT_CLIENT_CREDENTIALS, GRANT_IMPERSONATION)
    scopes: tuple[str, ...] = ("user_default",)


@dataclass(frozen=True)
class WebIntegration:
    """A web integration: requests from a browser origin must name an id that lists that origin."""

    id: str
    origins: tuple[str, ...]


@dataclass
class CloudUser:
    """A tenant user. `status` is one of active, invited, provisioned, disabled, deleted."""

    subject: str
    name: str = ""
    email: str = ""
    id: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    status: str = "active"
    groups: list[str] = field(default_factory=list)

    def as_json(self, tenant_id: str, base_url: str) -> dict[str, object]:
        """The user in the users API's shape (`assignedGroups` carry the JWT's groups)."""
        return {
            "id": self.id,
            "tenantId": tenant_id,
            "subject": self.subject,
            "name": self.name,
            "email": self.email,
            "status": self.status,
            "assignedGroups": [
                {"id": f"group-{name}", "name": name, "providerType": "idp"} for name in self.groups
            ],
            "links": {"self": {"href": f"{base_url}/api/v1/users/{self.id}"}},
        }


@dataclass(frozen=True)
class TierLimit:
    """At most `requests` per `window` seconds for one principal in one tier.

    Qlik's published tiers: Tier 1 is 1,000 a minute and Tier 2 100 a minute, "evaluated over a
    5-minute window to support bursts" (so 5,000 and 500 per 300 s), per tier, per user, per tenant.
    """

    requests: int
    window: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.window <= 0:
            raise ValueError("a tier allows at least one request in a positive window")


TIER1 = TierLimit(5000, 300.0)
TIER2 = TierLimit(500, 300.0)


def users_by_subject(users: Sequence[CloudUser]) -> dict[str, CloudUser]:
    table: dict[str, CloudUser] = {}
    for user in users:
        if user.subject in table:
            raise ValueError(f"users: subject {user.subject!r} used twice")
        table[user.subject] = user
    return table
