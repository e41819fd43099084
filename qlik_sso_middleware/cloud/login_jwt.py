"""Signing the JWT `/login/jwt-session` exchanges for a session, with the claims Qlik documents.

Header `{"alg": "RS256", "typ": "JWT", "kid": <IdP key id>}`; payload `iss` (the IdP's issuer),
`aud` = "qlik.api/login/jwt-session", `sub`, `subType` = "user", `name`, `email`,
`email_verified`, `jti` (unique, never reused), `iat`, `nbf`, `exp`, and `groups` when the user
has any ("the only optional claim currently read by Qlik Cloud"). Qlik refuses exp - nbf above one
hour; `iat` and `nbf` are set 5 s in the past so a tenant clock slightly behind ours still accepts
the token.

The key is loaded and checked once (RSA, at least 2048 bits); pyjwt (`pip install
qlik-sso-middleware[cloud]`) is imported here only, so the rest of the package never needs it.
Hazard: the key signs in any user of the tenant; nothing here logs it or the JWTs it makes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import CertificateError, ConfigurationError, InvalidIdentity
from .identity import CloudIdentity
from .settings import JwtSigningSettings

__all__ = ["BACKDATE", "JWT_AUDIENCE", "LoginJwtSigner"]

JWT_AUDIENCE = "qlik.api/login/jwt-session"
#: Seconds `iat` and `nbf` lie in the past, for clock skew between this server and the tenant.
BACKDATE = 5


def _pyjwt() -> Any:
    try:
        import jwt
    except ImportError as exc:
        raise ConfigurationError(
            "JWT login needs pyjwt: pip install 'qlik-sso-middleware[cloud]'", field="jwt"
        ) from exc
    return jwt


def _load_key(settings: JwtSigningSettings) -> rsa.RSAPrivateKey:
    source = settings.private_key
    if isinstance(source, bytes):
        data, where = source, "private_key"
    else:
        path = Path(source)
        if not path.is_file():
            raise CertificateError(f"file not found: {path}", field="private_key")
        try:
            data, where = path.read_bytes(), str(path)
        except OSError as exc:
            raise CertificateError(
                f"cannot read {path} ({exc.strerror})", field="private_key"
            ) from exc
    password = settings.private_key_password
    try:
        key = serialization.load_pem_private_key(
            data, password.reveal().encode() if password is not None else None
        )
    except TypeError as exc:  # encrypted without a password, or a password for a plain key
        raise CertificateError(
            f"{where}: the key is encrypted and needs private_key_password, or it is not "
            "encrypted and private_key_password must be left out",
            field="private_key_password",
        ) from exc
    except ValueError as exc:
        raise CertificateError(
            f"{where} holds no usable PEM private key (or the password is wrong)",
            field="private_key",
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(
            f"{where}: Qlik Cloud's JWT login is signed with RS256, so the key must be RSA",
            field="private_key",
        )
    if key.key_size < 2048:
        raise CertificateError(f"{where}: an RSA key of at least 2048 bits", field="private_key")
    return key


class LoginJwtSigner:
    """Mints login JWTs for one JWT identity provider. `clock` is wall-clock seconds."""

    def __init__(
        self, settings: JwtSigningSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._jwt = _pyjwt()
        self._key = _load_key(settings)
        self.settings = settings
        self._clock = clock

    def __repr__(self) -> str:
        return f"LoginJwtSigner(key_id={self.settings.key_id!r}, issuer={self.settings.issuer!r})"

    @property
    def key_size(self) -> int:
        """Bits of the RSA key (for `qlik-sso check`; nothing of the key itself)."""
        return int(self._key.key_size)

    def claims(self, identity: CloudIdentity) -> dict[str, Any]:
        """The payload for `identity` now (exposed so tests and `qlik-sso check` can show it)."""
        if not identity.email:
            raise InvalidIdentity(
                "Qlik Cloud's JWT login needs an e-mail address for the user; map one "
                "(CloudIdentityMapping.email_attribute)"
            )
        issued = int(self._clock()) - BACKDATE
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "aud": JWT_AUDIENCE,
            "sub": identity.subject,
            "subType": "user",
            "name": identity.display_name(),
            "email": identity.email,
            "email_verified": identity.email_verified,
            "jti": secrets.token_urlsafe(32),
            "iat": issued,
            "nbf": issued,
            "exp": issued + BACKDATE + int(self.settings.lifetime),
        }
        if identity.groups:
            claims["groups"] = list(identity.groups)
        return claims

    def mint(self, identity: CloudIdentity) -> str:
        """A signed, single-use login JWT for `identity`."""
        token: str = self._jwt.encode(
            self.claims(identity),
            self._key,
            algorithm="RS256",
            headers={"kid": self.settings.key_id, "typ": "JWT"},
        )
        return token
