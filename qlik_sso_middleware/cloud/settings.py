"""The credentials a Qlik Cloud target is built from, each validated on construction.

    OAuthClientSettings   an OAuth client (appType web): id, secret, the scopes to ask for
    JwtSigningSettings    the app's JWT signing key, its key id and issuer (the tenant's JWT IdP)
    RateLimit             how many calls of one tier this process sends per window

Secrets are held as `Secret` (repr shows `********`); nothing here reads a file: `CloudTarget`
loads the signing key once, at construction, so a bad key fails at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigurationError
from ..secret import Secret

__all__ = ["MAX_JWT_VALIDITY", "JwtSigningSettings", "OAuthClientSettings", "RateLimit"]

#: Qlik refuses a login JWT whose exp and nbf are more than an hour apart.
MAX_JWT_VALIDITY = 3600.0
#: Scope names: Qlik's are `user_default`, `admin_classic`, `admin.apps:read`, `offline_access`…
_SCOPE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


def _secret(value: Secret | str, name: str) -> Secret:
    secret = (
        value if isinstance(value, Secret) else Secret(value) if isinstance(value, str) else None
    )
    if secret is None or not secret.reveal():
        raise ConfigurationError("must be a non-empty string", field=name)
    return secret


def _printable(value: object, name: str, *, limit: int = 256) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ConfigurationError(
            f"must be a non-empty string of at most {limit} characters", field=name
        )
    if not value.isprintable() or value != value.strip():
        raise ConfigurationError("must not contain control characters or outer spaces", field=name)
    return value


@dataclass(frozen=True)
class OAuthClientSettings:
    """An OAuth client of the tenant (Administration > OAuth), used server-side only.

    - `scopes`: sent explicitly with every token request (Qlik's guidance: "set scopes on
      impersonation tokens explicitly"); each must be among the client's allowed scopes.
      Impersonation: `("user_default",)`. Provisioning users: an admin scope (`admin_classic`).
    Hazard: the secret lets anyone mint tokens for any user of the tenant; it never leaves the
    server, never appears in a log or an error message.
    """

    client_id: str
    client_secret: Secret = field(repr=False)
    scopes: tuple[str, ...] = ("user_default",)

    def __init__(
        self,
        client_id: str,
        client_secret: Secret | str,
        scopes: tuple[str, ...] | list[str] = ("user_default",),
    ) -> None:
        object.__setattr__(self, "client_id", _printable(client_id, "client_id"))
        object.__setattr__(self, "client_secret", _secret(client_secret, "client_secret"))
        scopes = tuple(scopes)
        if not scopes or not all(isinstance(s, str) and _SCOPE.match(s) for s in scopes):
            raise ConfigurationError("one or more scope names (e.g. user_default)", field="scopes")
        object.__setattr__(self, "scopes", scopes)

    @property
    def scope(self) -> str:
        """The space-delimited `scope` parameter."""
        return " ".join(self.scopes)


@dataclass(frozen=True)
class JwtSigningSettings:
    """The app's side of the tenant's JWT identity provider (Administration > Identity provider).

    - `private_key`: PEM file path or PEM bytes of the RSA key whose certificate the IdP holds
      (Qlik's tutorial: `openssl genrsa 4096`); `private_key_password` if it is encrypted.
    - `key_id`, `issuer`: exactly the IdP's "Key ID" and "Issuer".
    - `lifetime`: seconds a minted JWT stays valid (it is used at once; Qlik's samples use 30-60 s);
      with the 5 s back-dating of `iat`/`nbf` it must stay within Qlik's one hour.
    """

    private_key: str | Path | bytes = field(repr=False)
    key_id: str
    issuer: str
    private_key_password: Secret | None = field(default=None, repr=False)
    lifetime: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, str | Path | bytes) or not self.private_key:
            raise ConfigurationError("a PEM file path or PEM bytes", field="private_key")
        _printable(self.key_id, "key_id")
        _printable(self.issuer, "issuer", limit=1024)
        if self.private_key_password is not None and not isinstance(
            self.private_key_password, Secret
        ):
            object.__setattr__(
                self,
                "private_key_password",
                _secret(self.private_key_password, "private_key_password"),
            )
        if isinstance(self.lifetime, bool) or not isinstance(self.lifetime, int | float):
            raise ConfigurationError("a number of seconds", field="lifetime")
        if not 5 <= self.lifetime <= MAX_JWT_VALIDITY - 60:
            raise ConfigurationError(
                f"between 5 and {MAX_JWT_VALIDITY - 60:g} seconds (Qlik allows one hour "
                "between nbf and exp)",
                field="lifetime",
            )


@dataclass(frozen=True)
class RateLimit:
    """At most `max_requests` calls per `per_seconds` from this process, queued, never burst.

    Qlik's Tier 2 (token, login and user-creation calls) is 100 a minute per client, evaluated over
    5 minutes; the default keeps to 100 in *any* minute. Several app instances share the tenant's
    limit: give each its share (e.g. 50 with two). A caller waits at most `max_wait` seconds in
    the queue (or behind a 429's Retry-After), then gets `CloudRateLimited` (a 503).
    """

    max_requests: int = 100
    per_seconds: float = 60.0
    max_wait: float = 30.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_requests, bool)
            or not isinstance(self.max_requests, int)
            or self.max_requests < 1
        ):
            raise ConfigurationError("a positive whole number", field="max_requests")
        for name in ("per_seconds", "max_wait"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError("a positive number of seconds", field=name)
