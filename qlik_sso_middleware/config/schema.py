"""One configuration schema for the CLI and the middleware: a TOML file + `QLIK_SSO_*` variables.

    [qlik]                                   # the Qlik proxy and virtual proxy
    url = "https://qlik.acme.com"            # QLIK_SSO_QLIK_URL (environment wins over the file)
    prefix = "sso"
    [auth]
    strategy = "header"                      # header | session_api | ticket
    header_name = "hdr-usr"
    [qps]                                    # QPS API (session_api, ticket, and `qlik-sso check`)
    api_url = "https://qlik.acme.com:4243"
    root = "certs/root.pem"
    client_cert = "certs/client.pem"
    client_key = "certs/client_key.pem"
    [app]
    origin = "https://portal.acme.com"       # the app's public origin
    [cloud]                                  # a Qlik Cloud tenant (beside or instead of [qlik])
    tenant_url = "https://acme.eu.qlikcloud.com"
    client_id = "..."                        # client_secret: QLIK_SSO_CLOUD_CLIENT_SECRET
    [store]  [resolver]  [serve]  [offload]  [check]  [metrics]  [logging]

Every section is a frozen dataclass below; its fields are the keys (see docs/cli.md for the full
table). `load_config(path, env)` validates everything at start-up: unknown keys (with a
suggestion), wrong types, missing files and bad values are `ConfigurationError`s that name the key
and the file line or the variable. `config.build` turns a configuration into objects.
Relative file paths in the TOML file are relative to the file's directory.

Longer than most modules on purpose: the schema is read as one table (every section beside the
others, as docs/cli.md lists them), and the cross-field rules sit next to the fields they join.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, InvalidIdentity
from ..identity import QlikIdentity
from .loader import ENV_PREFIX, RawConfig, Secret, config_error, read_sources, to_section

__all__ = [
    "AppSection",
    "AuthSection",
    "CheckSection",
    "CloudSection",
    "LoggingSection",
    "MetricsSection",
    "OffloadSection",
    "QPSSection",
    "QlikSSOConfig",
    "QlikSection",
    "ResolverSection",
    "Secret",
    "ServeSection",
    "StoreSection",
    "load_config",
]


def _choices(*values: str) -> Any:
    return field(default=values[0], metadata={"choices": values})


@dataclass(frozen=True)
class QlikSection:
    """The Qlik proxy port and virtual proxy (`QlikTarget`)."""

    url: str | None = None
    prefix: str = "sso"
    cookie_name: str | None = None
    mount_path: str | None = None
    host_header: str | None = None
    #: true, false (never in production) or the path of a CA bundle for the proxy's certificate.
    verify: bool | str = True
    session_ttl: float = 25 * 60.0
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    max_connections: int = 100
    #: The library proxied requests go through (`QlikTarget.http_engine`).
    http_engine: str = _choices("auto", "reqwest", "aiohttp")


@dataclass(frozen=True)
class AuthSection:
    """How sessions are obtained: header virtual proxy, QPS session API or QPS ticket."""

    strategy: str = _choices("header", "session_api", "ticket")
    header_name: str = "hdr-usr"
    static_user_directory: str | None = None
    pattern: str = "$ud\\$id"
    logout_scope: str = _choices("user", "session")


@dataclass(frozen=True)
class QPSSection:
    """The QPS REST API (port 4243) and the client certificate exported from the QMC."""

    api_url: str | None = None
    root: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    client_key_password: Secret | None = None
    pfx: str | None = None
    pfx_password: Secret | None = None
    server_name: str | None = None
    timeout: float = 10.0
    #: The QRS API (`https://host:4242`): `qlik-sso check` reads the VP's settings there with the
    #: same certificate (read-only); the middleware never calls it.
    qrs_url: str | None = None


@dataclass(frozen=True)
class AppSection:
    """The app in front of Qlik: its origin, and the middleware's browser-facing options."""

    #: The app's public origin (`https://portal.acme.com`): `check` sends it as WebSocket Origin.
    origin: str | None = None
    #: "proxy": Qlik only through the middleware (same origin, the usual case); "cross-site": pages
    #: of another site embed Qlik's own origin (needs SameSite=None; Secure on Qlik's cookie).
    embedding: str = _choices("proxy", "cross-site")
    allowed_origins: list[str] = field(default_factory=list)
    trusted_proxies: list[str] = field(default_factory=list)
    forward_cookies: list[str] = field(default_factory=list)
    login_url: str | None = None
    allow_missing_origin: bool = False


@dataclass(frozen=True)
class CloudSection:
    """A Qlik Cloud tenant (`CloudTarget`): the token broker (`client_id` + `client_secret`), the
    cookie proxy (`jwt_private_key` + `jwt_key_id` + `jwt_issuer`), or both."""

    tenant_url: str | None = None
    name: str = "cloud"
    mount_path: str = "/qlik-cloud/"
    token_path: str = "access-token"
    #: The impersonation client (Administration > OAuth: web, user impersonation allowed).
    client_id: str | None = None
    client_secret: Secret | None = None
    scopes: list[str] = field(default_factory=lambda: ["user_default"])
    #: A separate admin client (client credentials, an admin scope) for provisioning users.
    admin_client_id: str | None = None
    admin_client_secret: Secret | None = None
    admin_scopes: list[str] = field(default_factory=lambda: ["admin_classic"])
    provision_users: bool = False
    #: The JWT identity provider: the app's RSA key (PEM file), and the IdP's key id and issuer.
    jwt_private_key: str | None = None
    jwt_private_key_password: Secret | None = None
    jwt_key_id: str | None = None
    jwt_issuer: str | None = None
    jwt_lifetime: float = 60.0
    web_integration_id: str | None = None
    #: true, false (loopback tenants only) or the path of a CA bundle.
    verify: bool | str = True
    timeout: float = 10.0
    #: This process's share of the tenant's Tier 2 limit (tokens, logins, user creation).
    token_requests_per_minute: int = 100
    rate_limit_max_wait: float = 30.0
    token_margin: float = 300.0
    session_ttl: float = 25 * 60.0
    #: How a resolver's identity becomes the tenant's user (`CloudIdentityMapping`).
    subject: str = "{user_directory}\\{user_id}"
    name_attribute: str = "name"
    email_attribute: str = "email"
    group_attribute: str = "group"
    emails_verified: bool = False


@dataclass(frozen=True)
class StoreSection:
    """Where Qlik sessions are cached: this process, or Redis shared by all app processes."""

    kind: str = _choices("memory", "redis")
    url: Secret | None = None  # redis://user:password@host:6379/0 may carry a password
    sealing_keys: list[Secret] = field(default_factory=list)
    key_prefix: str = "qlik-sso:"
    max_entries: int = 100_000


@dataclass(frozen=True)
class ResolverSection:
    """Who the user is when no code supplies a resolver (`serve`, `from_config`)."""

    kind: str = _choices("none", "trusted_header", "handoff")
    header: str = "X-Remote-User"
    user_directory: str | None = None
    trusted_networks: list[str] = field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])


@dataclass(frozen=True)
class ServeSection:
    """`qlik-sso serve`: the standalone reverse proxy."""

    host: str = "127.0.0.1"
    port: int = 8080
    upstream: str | None = None
    #: Signing keys, newest first: the newest signs, all verify (rotation). Handoff tokens and the
    #: proxy's own session cookie are signed with these (different salts).
    keys: list[Secret] = field(default_factory=list)
    handoff_max_age: int = 60
    session_max_age: int = 8 * 3600
    cookie_name: str = "qlik_sso_session"
    cookie_secure: bool = True
    #: Where the app sends users after login (`?token=...&next=/path`).
    handoff_path: str = "/_qlik_sso/handoff"


@dataclass(frozen=True)
class OffloadSection:
    """Offload mode: nginx or Caddy carries Qlik's traffic and asks the app's auth endpoint
    (`qlik-sso front-config` writes its configuration from these keys)."""

    #: Shared by the front proxy and the app (>= 32 characters): the auth endpoint answers no one
    #: else. QLIK_SSO_OFFLOAD_SECRET keeps it out of the file.
    secret: Secret | None = None
    auth_path: str = "/_qlik_sso/auth"
    #: Where the front proxy reaches the app (auth sub-requests, and the round trips through it).
    app_url: str = "http://127.0.0.1:8000"
    #: Where the front proxy listens: `host:port`, or `port`.
    listen: str = "127.0.0.1:8080"
    #: Seconds nginx may reuse an auth answer for the same request line, Host, Origin and cookies
    #: (0: ask the app on every request). Caddy has no such cache.
    auth_cache_seconds: float = 0.0
    #: nginx's cache directory for those answers (they hold Qlik session cookies: keep it private).
    auth_cache_dir: str = "/var/cache/nginx/qlik-sso-auth"


@dataclass(frozen=True)
class CheckSection:
    """`qlik-sso check`: the identity to log in with (DIRECTORY\\user; Qlik creates it if new)."""

    test_user: str | None = None
    #: The test user's e-mail: Qlik Cloud's JWT login needs one (`[cloud]` cookie proxy).
    test_email: str | None = None
    #: The app to open the engine WebSocket for (default: `engineData`, which needs no app).
    app_id: str = "engineData"


@dataclass(frozen=True)
class MetricsSection:
    enabled: bool = False
    path: str = "/_qlik_sso/metrics"


@dataclass(frozen=True)
class LoggingSection:
    level: str = _choices("INFO", "DEBUG", "WARNING", "ERROR")


_SCHEMA: dict[str, type[Any]] = {
    "qlik": QlikSection,
    "auth": AuthSection,
    "qps": QPSSection,
    "app": AppSection,
    "cloud": CloudSection,
    "store": StoreSection,
    "resolver": ResolverSection,
    "serve": ServeSection,
    "offload": OffloadSection,
    "check": CheckSection,
    "metrics": MetricsSection,
    "logging": LoggingSection,
}
_PATH_KEYS = (
    "qps.root",
    "qps.client_cert",
    "qps.client_key",
    "qps.pfx",
    "cloud.jwt_private_key",
)
#: Keys that are a path when they are a string (else true / false).
_VERIFY_KEYS = ("qlik.verify", "cloud.verify")


@dataclass(frozen=True)
class QlikSSOConfig:
    """The validated configuration; `location(key)` says where a key's value came from."""

    qlik: QlikSection
    auth: AuthSection
    qps: QPSSection
    app: AppSection
    cloud: CloudSection
    store: StoreSection
    resolver: ResolverSection
    serve: ServeSection
    offload: OffloadSection
    check: CheckSection
    metrics: MetricsSection
    logging: LoggingSection
    raw: RawConfig = field(repr=False, compare=False)

    def location(self, key: str) -> str | None:
        return self.raw.location(key)

    def error(
        self, key: str, message: str, kind: type[ConfigurationError] = ConfigurationError
    ) -> ConfigurationError:
        return config_error(self.location(key), key, message, kind)


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> QlikSSOConfig:
    """Read and validate the configuration. `path` defaults to `$QLIK_SSO_CONFIG` (if set);
    `env` to `os.environ`. Raises `ConfigurationError` naming the key and its file line."""
    env = os.environ if env is None else env
    if path is None and env.get(f"{ENV_PREFIX}CONFIG"):
        path = env[f"{ENV_PREFIX}CONFIG"]
    raw = read_sources(path, env, _SCHEMA)
    sections = {name: to_section(cls, name, raw) for name, cls in _SCHEMA.items()}
    config = QlikSSOConfig(raw=raw, **sections)
    config = _resolve_paths(config)
    _validate(config)
    return config


def _resolve_paths(config: QlikSSOConfig) -> QlikSSOConfig:
    """Relative paths from the file are relative to the file, not to the working directory."""
    base = config.raw.path.parent if config.raw.path is not None else None
    if base is None:
        return config
    changes: dict[str, dict[str, Any]] = {}
    for key in (*_PATH_KEYS, *_VERIFY_KEYS):
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        from_file = not (config.location(key) or "").startswith("$")
        if isinstance(value, str) and value and from_file and not Path(value).is_absolute():
            changes.setdefault(section, {})[name] = str(base / value)
    for section, values in changes.items():
        replaced = dataclasses.replace(getattr(config, section), **values)
        config = dataclasses.replace(config, **{section: replaced})
    return config


def _validate(config: QlikSSOConfig) -> None:
    """Cross-field rules the types cannot express; object construction checks the rest."""
    _validate_cloud(config)
    if config.qlik.url is None and config.cloud.tenant_url is None:
        raise config.error(
            "qlik.url",
            "is required (the Qlik proxy, e.g. https://qlik.acme.com), unless [cloud] "
            "tenant_url names a Qlik Cloud tenant",
        )
    if config.auth.strategy in ("session_api", "ticket") and config.qps.api_url is None:
        raise config.error(
            "qps.api_url", f"is required for auth.strategy = {config.auth.strategy!r}"
        )
    if config.store.kind == "redis" and config.store.url is None:
        raise config.error("store.url", "is required for store.kind = 'redis'")
    for key, path in (
        ("serve.handoff_path", config.serve.handoff_path),
        ("metrics.path", config.metrics.path),
        ("offload.auth_path", config.offload.auth_path),
        ("app.login_url", config.app.login_url or "/"),
    ):
        if not path.startswith("/") and not (key == "app.login_url" and "://" in path):
            raise config.error(key, f"{path!r} must be a path starting with '/'")
    if config.check.test_user is not None:
        try:
            QlikIdentity.parse(config.check.test_user)
        except InvalidIdentity as exc:
            raise config.error("check.test_user", str(exc)) from None
    for key in _PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value is not None and not Path(value).is_file():
            raise config.error(key, f"file not found: {value}")


_CLOUD_PAIRS = (
    (("client_id", "client_secret"), "the token broker's OAuth client"),
    (("admin_client_id", "admin_client_secret"), "the admin OAuth client"),
    (("jwt_private_key", "jwt_key_id", "jwt_issuer"), "the JWT identity provider"),
)


def _validate_cloud(config: QlikSSOConfig) -> None:
    """[cloud]: keys that only work together come together; something to serve is given."""
    cloud = config.cloud
    given = {
        f.name
        for f in dataclasses.fields(cloud)
        if config.raw.values.get("cloud", {}).get(f.name) is not None
    }
    if cloud.tenant_url is None:
        if given:
            raise config.error(f"cloud.{sorted(given)[0]}", "needs cloud.tenant_url")
        return
    for keys, what in _CLOUD_PAIRS:
        present = [k for k in keys if getattr(cloud, k) is not None]
        if present and len(present) != len(keys):
            missing = next(k for k in keys if getattr(cloud, k) is None)
            # A missing key has no line: point at the one it belongs with.
            raise config_error(
                config.location(f"cloud.{present[0]}"),
                f"cloud.{missing}",
                f"is required with cloud.{present[0]} ({what})",
            )
    if cloud.client_id is None and cloud.jwt_private_key is None:
        raise config.error(
            "cloud.tenant_url",
            "give client_id + client_secret (the token broker), or jwt_private_key + jwt_key_id "
            "+ jwt_issuer (the cookie proxy), or both",
        )
    if cloud.provision_users and cloud.admin_client_id is None:
        raise config.error(
            "cloud.provision_users",
            "needs admin_client_id + admin_client_secret (a client with the client_credentials "
            "grant and an admin scope)",
        )
