"""From a validated `QlikSSOConfig` to the objects it describes: strategy, targets, store, `QlikSSO`.

A constructor's `ConfigurationError(field=...)` is re-raised at the key's file line (`_located`), so
every error names where the bad value came from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..auth.base import AuthStrategy
from ..auth.header import HeaderAuth
from ..cloud import (
    CloudIdentityMapping,
    CloudTarget,
    JwtSigningSettings,
    OAuthClientSettings,
    RateLimit,
)
from ..errors import ConfigurationError
from ..target import QlikTarget, Timeouts
from .loader import Secret
from .schema import QlikSSOConfig

if TYPE_CHECKING:
    from ..auth._qps import QPSSettings
    from ..core import QlikSSO
    from ..resolvers.base import Resolver
    from ..stores.base import SessionStore

__all__ = [
    "build_auth",
    "build_cloud_target",
    "build_qps_settings",
    "build_resolver",
    "build_sso",
    "build_store",
    "build_target",
    "build_targets",
]


@contextlib.contextmanager
def _located(
    config: QlikSSOConfig, section: str, fields: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Re-raise a constructor's `ConfigurationError(field=...)` at the key's file line."""
    try:
        yield
    except ConfigurationError as exc:
        if exc.field is not None and "." in exc.field:
            raise  # already located
        if exc.field is None:
            key = section
        else:
            key = (fields or {}).get(exc.field) or f"{section}.{exc.field}"
        message = exc.message.split(": ", 1)[1] if exc.field else exc.message
        raise config.error(key, message, type(exc)) from None  # CertificateError stays one


def build_qps_settings(config: QlikSSOConfig) -> QPSSettings:
    """`QPSSettings` from `[qps]` (prefix from `[qlik]`)."""
    from ..auth._qps import QPSSettings

    qps = config.qps
    if qps.api_url is None:
        raise config.error("qps.api_url", "is required for the QPS API")
    with _located(config, "qps", {"prefix": "qlik.prefix"}):
        return QPSSettings(
            api_url=qps.api_url,
            root=qps.root,
            prefix=config.qlik.prefix,
            client_cert=qps.client_cert,
            client_key=qps.client_key,
            client_key_password=_reveal(qps.client_key_password),
            pfx=qps.pfx,
            pfx_password=_reveal(qps.pfx_password),
            server_name=qps.server_name,
            timeout=qps.timeout,
        )


def build_auth(config: QlikSSOConfig) -> AuthStrategy:
    """The `[auth]` strategy (QPS strategies load the certificates here)."""
    auth = config.auth
    if auth.strategy == "header":
        with _located(config, "auth"):
            return HeaderAuth(
                auth.header_name,
                static_user_directory=auth.static_user_directory,
                pattern=auth.pattern,
            )
    settings = build_qps_settings(config)
    scope: Any = auth.logout_scope
    with _located(config, "qps"):
        if auth.strategy == "ticket":
            from ..auth.ticket import TicketAuth

            return TicketAuth(settings, logout_scope=scope)
        from ..auth.session_api import SessionApiAuth

        return SessionApiAuth(settings, logout_scope=scope)


def build_target(config: QlikSSOConfig, auth: AuthStrategy | None = None) -> QlikTarget:
    q = config.qlik
    timeouts = Timeouts(connect=q.connect_timeout, read=q.read_timeout)
    assert q.url is not None  # checked by load_config
    with _located(config, "qlik"):
        return QlikTarget(
            q.url,
            prefix=q.prefix,
            auth=auth if auth is not None else build_auth(config),
            cookie_name=q.cookie_name,
            mount_path=q.mount_path,
            host_header=q.host_header,
            verify=q.verify,
            session_ttl=q.session_ttl,
            timeouts=timeouts,
            max_connections=q.max_connections,
            http_engine=q.http_engine,
        )


def build_cloud_target(config: QlikSSOConfig) -> CloudTarget | None:
    """The `[cloud]` tenant, or None when `cloud.tenant_url` is not set."""
    c = config.cloud
    if c.tenant_url is None:
        return None
    oauth = admin = jwt = None
    if c.client_id is not None and c.client_secret is not None:
        with _located(config, "cloud", _OAUTH_KEYS):
            oauth = OAuthClientSettings(c.client_id, c.client_secret, c.scopes)
    if c.admin_client_id is not None and c.admin_client_secret is not None:
        with _located(config, "cloud", {k: f"cloud.admin_{k}" for k in _OAUTH_KEYS}):
            admin = OAuthClientSettings(c.admin_client_id, c.admin_client_secret, c.admin_scopes)
    if c.jwt_private_key is not None and c.jwt_key_id is not None and c.jwt_issuer is not None:
        with _located(config, "cloud", _JWT_KEYS):
            jwt = JwtSigningSettings(
                c.jwt_private_key,
                key_id=c.jwt_key_id,
                issuer=c.jwt_issuer,
                private_key_password=c.jwt_private_key_password,
                lifetime=c.jwt_lifetime,
            )
    with _located(config, "cloud", _RATE_KEYS):
        rate = RateLimit(c.token_requests_per_minute, 60.0, max_wait=c.rate_limit_max_wait)
    with _located(config, "cloud"):
        mapping = CloudIdentityMapping(
            c.subject,
            name_attribute=c.name_attribute,
            email_attribute=c.email_attribute,
            group_attribute=c.group_attribute,
            emails_verified=c.emails_verified,
        )
    with _located(config, "cloud", {**_JWT_KEYS, **_TARGET_KEYS}):
        return CloudTarget(
            c.tenant_url,
            oauth=oauth,
            jwt=jwt,
            admin_oauth=admin,
            provision_users=c.provision_users,
            web_integration_id=c.web_integration_id,
            token_rate_limit=rate,
            verify=c.verify,
            timeout=c.timeout,
            name=c.name,
            mount_path=c.mount_path,
            token_path=c.token_path,
            identity=mapping,
            token_margin=c.token_margin,
            session_ttl=c.session_ttl,
        )


# Fields of the cloud settings classes → their [cloud] keys, for errors at the right line.
_OAUTH_KEYS = {k: f"cloud.{k}" for k in ("client_id", "client_secret", "scopes")}
_JWT_KEYS = {
    "private_key": "cloud.jwt_private_key",
    "private_key_password": "cloud.jwt_private_key_password",
    "key_id": "cloud.jwt_key_id",
    "issuer": "cloud.jwt_issuer",
    "lifetime": "cloud.jwt_lifetime",
}
_RATE_KEYS = {
    "max_requests": "cloud.token_requests_per_minute",
    "max_wait": "cloud.rate_limit_max_wait",
}
_TARGET_KEYS = {"oauth": "cloud.client_id", "jwt": "cloud.jwt_private_key"}


def build_targets(
    config: QlikSSOConfig, auth: AuthStrategy | None = None
) -> list[QlikTarget | CloudTarget]:
    """The `[qlik]` virtual proxy (when `qlik.url` is set) and the `[cloud]` tenant (when
    `cloud.tenant_url` is); `auth` as in `build_target`."""
    targets: list[QlikTarget | CloudTarget] = []
    if config.qlik.url is not None:
        targets.append(build_target(config, auth))
    cloud = build_cloud_target(config)
    if cloud is not None:
        targets.append(cloud)
    return targets


def build_store(config: QlikSSOConfig) -> SessionStore:
    store = config.store
    if store.kind == "memory":
        from ..stores.memory import MemorySessionStore

        with _located(config, "store"):
            return MemorySessionStore(max_entries=store.max_entries)
    try:
        from ..stores.redis import RedisSessionStore
    except ImportError:
        raise config.error(
            "store.kind", "'redis' needs the redis extra: pip install 'qlik-sso-middleware[redis]'"
        ) from None
    assert store.url is not None
    with _located(config, "store"):
        return RedisSessionStore(
            store.url.reveal(),
            sealing_keys=[k.reveal() for k in store.sealing_keys] or None,
            key_prefix=store.key_prefix,
        )


def build_resolver(config: QlikSSOConfig) -> Resolver | None:
    """The `[resolver]` of kind `trusted_header`; None for `none` and `handoff` (serve's own)."""
    r = config.resolver
    if r.kind != "trusted_header":
        return None
    from ..resolvers.headers import TrustedHeaderResolver

    with _located(config, "resolver"):
        return TrustedHeaderResolver(
            r.header, user_directory=r.user_directory, trusted_networks=r.trusted_networks
        )


def build_sso(config: QlikSSOConfig, *, resolver: Any = None) -> QlikSSO:
    """A `QlikSSO` from the configuration; `resolver` (code) overrides `[resolver]`."""
    from ..core import QlikSSO

    chosen = resolver if resolver is not None else build_resolver(config)
    if chosen is None:
        raise config.error(
            "resolver.kind",
            "no resolver: pass resolver=... in code, or set kind = 'trusted_header'",
        )
    targets = build_targets(config)
    app = config.app
    with _located(config, "app"):
        return QlikSSO(
            targets,
            resolver=chosen,
            store=build_store(config),
            allowed_origins=app.allowed_origins,
            trusted_proxies=app.trusted_proxies,
            forward_cookies=app.forward_cookies,
            login_url=app.login_url,
            allow_missing_origin=app.allow_missing_origin,
        )


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret is not None else None
