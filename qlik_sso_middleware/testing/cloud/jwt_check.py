"""The checks `/login/jwt-session` makes on a JWT, one documented rule each, in a fixed order.

Qlik's Login API specification lists the claims (iss, aud, sub, subType, name, email,
email_verified, jti, iat, nbf, exp, and the key id), says the JWT must be signed "with an algorithm
other than HS" and that exp - nbf must not exceed one hour; the June 2022 change made jti (no
reuse) and nbf mandatory. A missing claim is answered 400 "Invalid token request" /
INTERNAL-TOKEN-1 / "JWT_LOGIN_VALIDATIONS Missing required claim: nbf" (a Qlik support thread);
the other failures' exact codes are not published, so they are answered 401 with a descriptive
detail (docs/qlik-cloud.md marks which is which).

The signature is verified with `cryptography` directly, not with the library the client signs with,
so a bug in one cannot hide in the other.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .tenant import JWT_AUDIENCE, JwtIdentityProvider

__all__ = ["MAX_VALIDITY", "REQUIRED_CLAIMS", "JwtRejection", "LoginClaims", "check_login_jwt"]

#: exp - nbf may be at most one hour (Login API specification).
MAX_VALIDITY = 3600
REQUIRED_CLAIMS = (
    "iss",
    "aud",
    "sub",
    "subType",
    "name",
    "email",
    "email_verified",
    "jti",
    "iat",
    "nbf",
    "exp",
)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RS256": hashes.SHA256,
    "RS384": hashes.SHA384,
    "RS512": hashes.SHA512,
}


class JwtRejection(Exception):
    """Why the JWT was refused: the HTTP status, Qlik-style error code and detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @property
    def code(self) -> str:
        return "INTERNAL-TOKEN-1" if self.status == 400 else "LOGIN-JWT-REJECTED"

    @property
    def title(self) -> str:
        return "Invalid token request" if self.status == 400 else "Unauthorized"


def _invalid(detail: str) -> JwtRejection:
    return JwtRejection(400, f"JWT_LOGIN_VALIDATIONS {detail}")


@dataclass(frozen=True)
class LoginClaims:
    """The accepted JWT's user claims."""

    issuer: str
    subject: str
    name: str
    email: str
    email_verified: bool
    groups: tuple[str, ...]
    jti: str
    expires: float


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    parts = token.split(".")
    if len(parts) != 3:
        raise _invalid("Malformed token: a JWS compact serialization has three parts")
    try:
        header = json.loads(_b64(parts[0]))
        payload = json.loads(_b64(parts[1]))
        signature = _b64(parts[2])
    except (ValueError, binascii.Error, RecursionError):
        raise _invalid("Malformed token: not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise _invalid("Malformed token: header and payload must be JSON objects")
    return header, payload, signature, f"{parts[0]}.{parts[1]}".encode("ascii")


def _public_key(provider: JwtIdentityProvider) -> rsa.RSAPublicKey:
    data = provider.public_key
    loaded: Any
    if b"CERTIFICATE" in data:
        loaded = x509.load_pem_x509_certificate(data).public_key()
    else:
        loaded = serialization.load_pem_public_key(data)
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ValueError("the simulated IdP verifies RSA keys only")
    return loaded


def _number(payload: Mapping[str, Any], name: str) -> float:
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"Invalid claim: {name} must be a NumericDate")
    return float(value)


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload[name]
    if not isinstance(value, str) or not value:
        raise _invalid(f"Invalid claim: {name} must be a non-empty string")
    return value


def check_login_jwt(
    token: str,
    providers: Sequence[JwtIdentityProvider],
    *,
    now: float,
    used_jti: Mapping[tuple[str, str], float],
    leeway: float = 0.0,
) -> LoginClaims:
    """Check `token` as Qlik Cloud would; raise `JwtRejection` naming the first broken rule.

    `used_jti` maps (issuer, jti) of already consumed tokens to their expiry (replay check).
    """
    header, payload, signature, signed = _segments(token)
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _invalid("Missing required header: kid")
    provider = next((p for p in providers if p.key_id == kid), None)
    if provider is None:
        raise JwtRejection(401, "No JWT identity provider has this key id (kid)")
    if not isinstance(alg, str) or alg.upper().startswith("HS") or alg not in provider.algorithms:
        raise JwtRejection(401, f"Signing algorithm {alg!r} is not accepted")
    try:
        _public_key(provider).verify(signature, signed, padding.PKCS1v15(), _HASHES[alg]())
    except (InvalidSignature, KeyError):
        raise JwtRejection(401, "Invalid signature for the identity provider's key") from None
    for name in REQUIRED_CLAIMS:
        if name not in payload:
            raise _invalid(f"Missing required claim: {name}")
    issuer, subject, name = _text(payload, "iss"), _text(payload, "sub"), _text(payload, "name")
    email, sub_type = _text(payload, "email"), _text(payload, "subType")
    iat, nbf, exp = _number(payload, "iat"), _number(payload, "nbf"), _number(payload, "exp")
    jti = payload["jti"]
    if isinstance(jti, bool) or not isinstance(jti, str | int) or jti == "":
        raise _invalid("Invalid claim: jti must be a string or number")
    verified = payload["email_verified"]
    if not isinstance(verified, bool):
        raise _invalid("Invalid claim: email_verified must be a boolean")
    groups = payload.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise _invalid("Invalid claim: groups must be an array of strings")
    audience = payload["aud"]
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or JWT_AUDIENCE not in audiences:
        raise JwtRejection(401, f"Invalid audience: expected {JWT_AUDIENCE}")
    if issuer != provider.issuer:
        raise JwtRejection(401, "Invalid issuer: it does not match the identity provider")
    if sub_type != "user":
        raise _invalid("Invalid claim: subType must be user")
    if exp - nbf > MAX_VALIDITY:
        raise _invalid(f"exp and nbf are more than {MAX_VALIDITY} seconds apart")
    if iat > now + leeway:
        raise JwtRejection(401, "Token issued in the future (iat)")
    if nbf > now + leeway:
        raise JwtRejection(401, "Token not yet valid (nbf)")
    if exp <= now - leeway:
        raise JwtRejection(401, "Token expired (exp)")
    if (issuer, str(jti)) in used_jti:
        raise JwtRejection(401, "Token already used (jti)")
    return LoginClaims(issuer, subject, name, email, verified, tuple(groups), str(jti), exp)
