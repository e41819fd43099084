"""`CloudTarget`: one Qlik Cloud tenant the app signs its users into, validated once.

A tenant is reached two ways (docs/qlik-cloud.md):

- OAuth user impersonation (`oauth`): the server asks `/oauth/token` for an access token on
  behalf of an existing user; the browser uses it as a bearer token (qlik-embed, qlik-api). No
  third-party cookies. Users must exist first: `provision_users=True` creates them on first
  sight with the `admin_oauth` client.
- JWT login (`jwt`): the server signs a JWT with the app's key and exchanges it at
  `/login/jwt-session` for the tenant's session cookies, which stay server-side.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

import httpx2 as httpx

from ..auth._qps_settings import is_loopback_host
from ..errors import ConfigurationError
from ..upstream import _ssl_context
from .login_jwt import LoginJwtSigner
from .settings import JwtSigningSettings, OAuthClientSettings, RateLimit

__all__ = ["CloudTarget"]

_WEB_INTEGRATION = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@dataclass(frozen=True)
class CloudTarget:
    """A Qlik Cloud tenant and the credentials to sign users into it.

    - `tenant_url`: `https://<tenant>.<region>.qlikcloud.com` (origin only; custom domains work).
    - `oauth`: the impersonation client (needs the `urn:qlik:oauth:user-impersonation` grant).
    - `jwt`: the JWT signing settings, for the cookie (JWT login) mode.
    - `admin_oauth`: a second client with the client-credentials grant and an admin scope, used
      only to look users up and create them (Qlik advises separating it from the impersonation
      client); required by `provision_users`.
    - `web_integration_id`: sent as `qlik-web-integration-id` where browsers will need it.
    - `token_rate_limit` / `lookup_rate_limit`: this process's share of Tier 2 (tokens, logins,
      user creation) and Tier 1 (user look-ups).
    - `verify`: TLS verification (True, or a CA file path); False only for a loopback host or
      with `force_insecure=True`.
    - `timeout`: seconds for each call.
    """

    tenant_url: str
    oauth: OAuthClientSettings | None = None
    jwt: JwtSigningSettings | None = None
    admin_oauth: OAuthClientSettings | None = None
    provision_users: bool = False
    web_integration_id: str | None = None
    token_rate_limit: RateLimit = field(default_factory=RateLimit)
    lookup_rate_limit: RateLimit = field(default_factory=lambda: RateLimit(1000, 60.0))
    verify: bool | str = True
    force_insecure: bool = False
    timeout: float = 10.0

    def __post_init__(self) -> None:
        url = self._url()
        object.__setattr__(self, "tenant_url", f"{url.scheme}://{url.netloc.decode('ascii')}")
        if self.oauth is None and self.jwt is None:
            raise ConfigurationError(
                "give oauth (impersonation) or jwt (JWT login), or both", field="oauth"
            )
        if self.provision_users and self.admin_oauth is None:
            raise ConfigurationError(
                "provision_users needs admin_oauth: an OAuth client with the client_credentials "
                "grant and an admin scope (admin_classic)",
                field="admin_oauth",
            )
        if self.web_integration_id is not None and (
            not self.web_integration_id or not set(self.web_integration_id) <= _WEB_INTEGRATION
        ):
            raise ConfigurationError(
                "letters, digits, '-' and '_' only", field="web_integration_id"
            )
        if not isinstance(self.verify, bool | str) or self.verify == "":
            raise ConfigurationError("True, False or a CA file path", field="verify")
        if self.verify is False and not self.force_insecure and not is_loopback_host(url.host):
            raise ConfigurationError(
                "turning TLS verification off is refused for a non-loopback tenant; give a CA "
                "file instead, or force_insecure=True if you really must",
                field="verify",
            )
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float):
            raise ConfigurationError("a number of seconds", field="timeout")
        if not 0 < self.timeout <= 300:
            raise ConfigurationError("between 0 and 300 seconds", field="timeout")
        if self.jwt is not None:
            LoginJwtSigner(self.jwt)  # loads and checks the key now: a bad key fails at start-up

    def _url(self) -> httpx.URL:
        try:
            url = httpx.URL(self.tenant_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ConfigurationError("not a URL", field="tenant_url") from exc
        if not url.host:
            raise ConfigurationError("has no host", field="tenant_url")
        if url.scheme != "https" and not (url.scheme == "http" and is_loopback_host(url.host)):
            raise ConfigurationError("Qlik Cloud is served over https only", field="tenant_url")
        if url.path not in ("", "/") or url.query or url.fragment or url.userinfo:
            raise ConfigurationError(
                "give the origin only: https://<tenant>.<region>.qlikcloud.com", field="tenant_url"
            )
        return url

    @property
    def host(self) -> str:
        return self._url().host

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for calls to the tenant."""
        return _ssl_context(self.verify)
