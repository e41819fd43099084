"""`CloudTarget` and its settings: every option validated at construction, secrets never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from qlik_sso_middleware.cloud import (
    CloudTarget,
    JwtSigningSettings,
    OAuthClientSettings,
    RateLimit,
    Secret,
)
from qlik_sso_middleware.errors import CertificateError, ConfigurationError
from qlik_sso_middleware.testing.cloud import SigningKeyPair, new_signing_key

OAUTH = OAuthClientSettings("client-id", "very-secret-value")


def _field(exc: pytest.ExceptionInfo[ConfigurationError]) -> str | None:
    return exc.value.field


def test_secrets_are_wrapped_and_never_shown() -> None:
    settings = OAuthClientSettings(
        "client-id", "very-secret-value", ["user_default", "admin.apps:read"]
    )
    assert isinstance(settings.client_secret, Secret)
    assert settings.client_secret.reveal() == "very-secret-value"
    assert "very-secret-value" not in repr(settings)
    assert settings.scope == "user_default admin.apps:read"
    target = CloudTarget("https://acme.eu.qlikcloud.com", oauth=settings)
    assert "very-secret-value" not in repr(target)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"client_id": "", "client_secret": "s"}, "client_id"),
        ({"client_id": "id\n", "client_secret": "s"}, "client_id"),
        ({"client_id": "id", "client_secret": ""}, "client_secret"),
        ({"client_id": "id", "client_secret": Secret("")}, "client_secret"),
        ({"client_id": "id", "client_secret": "s", "scopes": ()}, "scopes"),
        ({"client_id": "id", "client_secret": "s", "scopes": ("user default",)}, "scopes"),
    ],
)
def test_oauth_settings_are_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        OAuthClientSettings(**kwargs)
    assert _field(refused) == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_requests": 0}, "max_requests"),
        ({"max_requests": True}, "max_requests"),
        ({"per_seconds": 0}, "per_seconds"),
        ({"max_wait": -1}, "max_wait"),
    ],
)
def test_rate_limit_is_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        RateLimit(**kwargs)
    assert _field(refused) == field


@pytest.mark.parametrize(
    ("url", "kwargs", "field"),
    [
        ("ftp://acme.eu.qlikcloud.com", {}, "tenant_url"),
        ("http://acme.eu.qlikcloud.com", {}, "tenant_url"),
        ("https://acme.eu.qlikcloud.com/sense", {}, "tenant_url"),
        ("https://user@acme.eu.qlikcloud.com", {}, "tenant_url"),
        ("https://", {}, "tenant_url"),
        ("https://acme.eu.qlikcloud.com", {"oauth": None}, "oauth"),
        ("https://acme.eu.qlikcloud.com", {"provision_users": True}, "admin_oauth"),
        ("https://acme.eu.qlikcloud.com", {"web_integration_id": "a b"}, "web_integration_id"),
        ("https://acme.eu.qlikcloud.com", {"verify": False}, "verify"),
        ("https://acme.eu.qlikcloud.com", {"verify": ""}, "verify"),
        ("https://acme.eu.qlikcloud.com", {"timeout": 0}, "timeout"),
    ],
)
def test_target_is_checked(url: str, kwargs: dict[str, Any], field: str) -> None:
    options: dict[str, Any] = {"oauth": OAUTH, **kwargs}
    with pytest.raises(ConfigurationError) as refused:
        CloudTarget(url, **options)
    assert _field(refused) == field


def test_target_normalises_and_allows_loopback_exceptions() -> None:
    assert (
        CloudTarget("https://ACME.eu.qlikcloud.com/", oauth=OAUTH).tenant_url
        == "https://acme.eu.qlikcloud.com"
    )
    assert CloudTarget("http://127.0.0.1:8443", oauth=OAUTH, verify=False).host == "127.0.0.1"
    forced = CloudTarget(
        "https://acme.eu.qlikcloud.com", oauth=OAUTH, verify=False, force_insecure=True
    )
    assert forced.ssl_context().verify_mode.name == "CERT_NONE"


def _pem(key: Any, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )


def _jwt(private_key: Any, password: str | None = None) -> JwtSigningSettings:
    return JwtSigningSettings(
        private_key,
        key_id="kid",
        issuer="https://app",
        private_key_password=Secret(password) if password else None,
    )


def test_the_signing_key_is_loaded_and_checked_at_construction(tmp_path: Path) -> None:
    good = new_signing_key(password=b"pw")
    path = tmp_path / "key.pem"
    path.write_bytes(good.private_pem)
    CloudTarget("https://t.example", jwt=_jwt(path, "pw"))  # a file path and its password
    cases: list[tuple[Any, str | None, str]] = [
        (tmp_path / "missing.pem", None, "private_key"),
        (b"not a key", None, "private_key"),
        (good.private_pem, None, "private_key_password"),
        (good.private_pem, "wrong", "private_key"),
        (_pem(ec.generate_private_key(ec.SECP256R1())), None, "private_key"),
        (_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), None, "private_key"),
    ]
    for source, password, field in cases:
        with pytest.raises(CertificateError) as refused:
            CloudTarget("https://t.example", jwt=_jwt(source, password))
        assert _field(refused) == field, source
        assert "pw" not in str(refused.value).replace("password", "")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"key_id": ""}, "key_id"),
        ({"issuer": " padded"}, "issuer"),
        ({"lifetime": 3599}, "lifetime"),
        ({"lifetime": 1}, "lifetime"),
        ({"private_key": b""}, "private_key"),
    ],
)
def test_jwt_settings_are_checked(
    signing_key: SigningKeyPair, kwargs: dict[str, Any], field: str
) -> None:
    options: dict[str, Any] = {
        "private_key": signing_key.private_pem,
        "key_id": "kid",
        "issuer": "iss",
        **kwargs,
    }
    with pytest.raises(ConfigurationError) as refused:
        JwtSigningSettings(**options)
    assert _field(refused) == field
    assert "PRIVATE KEY" not in repr(JwtSigningSettings(signing_key.private_pem, "kid", "iss"))


def test_how_the_middleware_serves_a_tenant_has_defaults() -> None:
    target = CloudTarget("https://acme.eu.qlikcloud.com:8443", oauth=OAUTH)
    assert (target.name, target.mount_path, target.token_path) == (
        "cloud",
        "/qlik-cloud/",
        "access-token",
    )
    assert (target.netloc, target.port) == ("acme.eu.qlikcloud.com:8443", 8443)
    assert target.token_broker and not target.cookie_proxy
    assert "console/" in target.blocked_paths


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"mount_path": "qlik-cloud/"}, "mount_path"),
        ({"mount_path": "/qlik-cloud"}, "mount_path"),
        ({"token_path": "/access-token"}, "token_path"),
        ({"token_path": "a/../token"}, "token_path"),
        ({"token_path": "to ken"}, "token_path"),
        ({"token_margin": -1}, "token_margin"),
        ({"session_ttl": 0}, "session_ttl"),
        ({"max_connections": 0}, "max_connections"),
        ({"http_engine": "curl"}, "http_engine"),
        ({"blocked_paths": "console/"}, "blocked_paths"),
    ],
)
def test_serving_options_are_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        CloudTarget("https://acme.eu.qlikcloud.com", oauth=OAUTH, **kwargs)
    assert _field(refused) == field
