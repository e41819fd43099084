"""A JWT signing key pair for tests, like the one Qlik's tutorial makes with openssl.

Qlik's tutorial: `openssl genrsa -out privatekey.pem 4096` and a self-signed `publickey.cer`
uploaded as the JWT identity provider's certificate. Tests use 2048 bits (4096-bit generation is
slow) and may hand either the public key or the certificate to `JwtIdentityProvider`.

Hazard: test credentials only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["SigningKeyPair", "new_signing_key"]


@dataclass(frozen=True)
class SigningKeyPair:
    """PEM bytes: the private key (PKCS#8, optionally encrypted), public key and certificate."""

    private_pem: bytes = field(repr=False)
    public_pem: bytes
    certificate_pem: bytes


def new_signing_key(
    *, bits: int = 2048, password: bytes | None = None, common_name: str = "jwt-idp"
) -> SigningKeyPair:
    """A fresh RSA key pair and a self-signed certificate for it (valid for five years)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1825))
        .sign(key, hashes.SHA256())
    )
    return SigningKeyPair(
        private_pem, public_pem, certificate.public_bytes(serialization.Encoding.PEM)
    )
