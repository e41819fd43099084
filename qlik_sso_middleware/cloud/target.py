"""`CloudTarget`: one Qlik Cloud tenant the app signs its users into, validated once.

A tenant is reached two ways (docs/qlik-cloud.md):

- OAuth user impersonation (`oauth`): the server asks `/oauth/token` for an access token on
  behalf of an existing user; the browser uses it as a bearer token (qlik-embed, qlik-api). No
  third-party cookies. Users must exist first: `provision_users=True` creates them on first
  sight with the `admin_oauth` client.
- JWT login (`jwt`): the server signs a JWT with the app's key and exchanges it at
  `/login/jwt-session` for the tenant's session cookies, which stay server-side.

Served by the middleware (`QlikSSO` takes it beside `QlikTarget`s) under `mount_path`:
`<mount_path><token_path>` is the token broker (with `oauth`); with `jwt`, everything else under
the mount is the tenant relayed with the user's cookie session (the cookie proxy).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx2 as httpx

from ..auth._qps_settings import is_loopback_host
from ..errors import ConfigurationError
from ..proxy.engine import Timeouts
from ..target import HTTP_ENGINES
from ..upstream import _ssl_context
from .identity import CloudIdentityMapping
from .login_jwt import LoginJwtSigner
from .settings import JwtSigningSettings, OAuthClientSettings, RateLimit

__all__ = ["BROWSER_HEADERS", "DEFAULT_CLOUD_BLOCKED", "CloudTarget"]

_WEB_INTEGRATION = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_TOKEN_PATH = re.compile(r"^[A-Za-z0-9\-_~]+(\.[A-Za-z0-9\-_~]+)*(/[A-Za-z0-9\-_~]+)*$")

#: Tenant surfaces the cookie proxy refuses (relative to the mount): the management console,
#: sign-in endpoints (the proxy signs users in itself), and the APIs that configure who may sign
#: in (OAuth clients, identity providers, web integrations, API keys, CSP origins): an embedded
#: user with an admin role must not reach them through the app.
DEFAULT_CLOUD_BLOCKED = (
    "console/",
    "login/",
    "oauth/",
    "api/v1/oauth-clients",
    "api/v1/identity-providers",
    "api/v1/web-integrations",
    "api/v1/api-keys",
    "api/v1/csp-origins",
    "api/v1/tenants",
)
#: Headers by which a browser could speak for a cookie session at the tenant; the middleware
#: strips them from every browser request and sends its own.
BROWSER_HEADERS = ("qlik-csrf-token", "qlik-web-integration-id")


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

    How the middleware serves it:

    - `name`: the target's name (`Resolved.target`, `TenantResolver`); default `"cloud"`.
    - `mount_path`: where the app serves the tenant (default `/qlik-cloud/`).
    - `token_path`: the token broker under the mount (`/qlik-cloud/access-token`), with `oauth`.
    - `identity`: how a resolver's `QlikIdentity` becomes the tenant's user (subject, name,
      e-mail, groups).
    - `token_margin`: a cached access token is handed out only while it has this many seconds
      left (default 300); then the next request gets a fresh one.
    - `session_ttl`: sliding cache lifetime of a cookie session, under the tenant's inactivity
      timeout.
    - `blocked_paths` / `allowed_paths`: tenant paths the cookie proxy refuses / lets through
      anyway (relative to the mount, case-insensitive prefixes).
    - `proxy_timeouts`, `max_connections`, `http_engine`: the cookie proxy's connections (as
      `QlikTarget`'s `timeouts`, `max_connections`, `http_engine`).
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
    name: str | None = None
    mount_path: str = "/qlik-cloud/"
    token_path: str = "access-token"
    identity: CloudIdentityMapping = field(default_factory=CloudIdentityMapping)
    token_margin: float = 300.0
    session_ttl: float = 25 * 60.0
    blocked_paths: Sequence[str] = DEFAULT_CLOUD_BLOCKED
    allowed_paths: Sequence[str] = ()
    proxy_timeouts: Timeouts = field(default_factory=Timeouts)
    max_connections: int = 100
    http_engine: str = "auto"

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
        self._check_serving()

    def _check_serving(self) -> None:
        if self.name is None:
            object.__setattr__(self, "name", "cloud")
        elif not isinstance(self.name, str) or not self.name or not self.name.isprintable():
            raise ConfigurationError("a non-empty printable string", field="name")
        mount = self.mount_path
        if not (isinstance(mount, str) and mount.startswith("/") and mount.endswith("/")):
            raise ConfigurationError("must start and end with '/'", field="mount_path")
        if not isinstance(self.token_path, str) or not _TOKEN_PATH.match(self.token_path):
            raise ConfigurationError(
                "a relative path of letters, digits, '-', '_', '~' and '.' (no leading '/')",
                field="token_path",
            )
        for name in ("token_margin", "session_ttl"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError("a number of seconds >= 0", field=name)
        if self.session_ttl <= 0:
            raise ConfigurationError("must be positive", field="session_ttl")
        if isinstance(self.max_connections, bool) or not isinstance(self.max_connections, int):
            raise ConfigurationError("a whole number", field="max_connections")
        if self.max_connections < 1:
            raise ConfigurationError("must be at least 1", field="max_connections")
        if self.http_engine not in HTTP_ENGINES:
            raise ConfigurationError(
                f"{self.http_engine!r} is not one of {', '.join(HTTP_ENGINES)}", field="http_engine"
            )
        for name in ("blocked_paths", "allowed_paths"):
            paths = getattr(self, name)
            if isinstance(paths, str) or not all(isinstance(p, str) for p in paths):
                raise ConfigurationError("a list of path prefixes", field=name)

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

    @property
    def port(self) -> int:
        url = self._url()
        return url.port or (443 if url.scheme == "https" else 80)

    @property
    def netloc(self) -> str:
        """`host[:port]` as the tenant must see it in `Host` (it serves tenants by name)."""
        return self._url().netloc.decode("ascii")

    @property
    def token_broker(self) -> bool:
        """The token broker is served (an impersonation client is configured)."""
        return self.oauth is not None

    @property
    def cookie_proxy(self) -> bool:
        """The tenant is relayed with cookie sessions (JWT signing is configured)."""
        return self.jwt is not None

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for calls to the tenant."""
        return _ssl_context(self.verify)
