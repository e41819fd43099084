"""Loading and checking the client certificate Qlik exports for its QPS API (port 4243).

Qlik's QMC exports `root.pem`, `client.pem` + `client_key.pem` (key optionally encrypted) and
`client.pfx` (PKCS#12, optional password). `load_client_credentials` reads either form, checks it
the way QPS will (key matches certificate, validity window, signed by the site's root) and raises
`CertificateError` naming the option at fault, so a broken export is found at start-up instead of
as an opaque TLS failure on the first login. `client_ssl_context` turns the result into the
`ssl.SSLContext` the QPS client uses.

Hazard: the client certificate can impersonate *any* Qlik user; treat its files like a root
password. Nothing here logs or raises with a password or key material in the text.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import shutil
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from ..errors import CertificateError, ConfigurationError

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "ClientCredentials",
    "client_ssl_context",
    "load_client_credentials",
]

logger = logging.getLogger("qlik_sso_middleware.certificates")

#: A client certificate expiring within this many days is reported with a WARNING at start-up.
EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class ClientCredentials:
    """A checked client certificate, its private key and the trusted root(s).

    `roots` is empty only when server verification was explicitly turned off and no root was given.
    """

    certificate: x509.Certificate
    key: PrivateKeyTypes = field(repr=False)
    roots: tuple[x509.Certificate, ...]

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def _read(path: str | Path, option: str) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise CertificateError(f"file not found: {file}", field=option)
    try:
        return file.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read {file} ({exc.strerror})", field=option) from exc


def _load_pem_certificates(data: bytes, option: str, path: str | Path) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"{path} holds no PEM certificate", field=option) from exc
    return certificates


def _load_pem_key(data: bytes, password: str | None, path: str | Path) -> PrivateKeyTypes:
    encrypted = b"ENCRYPTED" in data
    if encrypted and password is None:
        raise CertificateError(
            f"{path} is encrypted: set client_key_password", field="client_key_password"
        )
    if not encrypted and password is not None:
        raise CertificateError(
            f"{path} is not encrypted, but a client_key_password was given",
            field="client_key_password",
        )
    try:
        return serialization.load_pem_private_key(
            data, password.encode() if password is not None else None
        )
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise CertificateError(
                f"wrong password for {path}", field="client_key_password"
            ) from exc
        raise CertificateError(
            f"{path} holds no usable PEM private key", field="client_key"
        ) from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for exotic keys
        raise CertificateError(f"{path}: unsupported private key", field="client_key") from exc


def _public_der(obj: x509.Certificate | PrivateKeyTypes) -> bytes:
    public = obj.public_key()
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_pfx(path: str | Path, password: str | None) -> tuple[PrivateKeyTypes, x509.Certificate]:
    data = _read(path, "pfx")
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(
            data, password.encode() if password is not None else None
        )
    except ValueError as exc:
        hint = "wrong pfx_password" if password is not None else "it needs pfx_password"
        raise CertificateError(
            f"cannot open {path}: {hint}, or it is not a PKCS#12 (.pfx) file", field="pfx_password"
        ) from exc
    if key is None:
        raise CertificateError(
            f"{path} holds no private key (export the client certificate with its key)",
            field="pfx",
        )
    if certificate is None:
        # Without a localKeyId link, the certificate lands in `extra`; pick the one of this key.
        matching = [c for c in extra if _public_der(c) == _public_der(key)]
        if not matching:
            raise CertificateError(f"{path} holds no certificate for its private key", field="pfx")
        certificate = matching[0]
    return key, certificate


def _check_validity(
    certificate: x509.Certificate, option: str, now: dt.datetime, what: str
) -> None:
    if now < certificate.not_valid_before_utc:
        raise CertificateError(
            f"the {what} is not valid yet (valid from "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC); check the clock",
            field=option,
        )
    if now > certificate.not_valid_after_utc:
        raise CertificateError(
            f"the {what} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; "
            "export a new one from the QMC",
            field=option,
        )
    left = certificate.not_valid_after_utc - now
    if left < dt.timedelta(days=EXPIRY_WARNING_DAYS):
        logger.warning(
            "The %s (%s) expires on %s UTC, in %d days; export a new one from the QMC",
            what,
            certificate.subject.rfc4514_string(),
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M}",
            left.days,
        )


def _signed_by(certificate: x509.Certificate, roots: list[x509.Certificate]) -> bool:
    for root in roots:
        try:
            certificate.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def load_client_credentials(
    *,
    root: str | Path | None,
    client_cert: str | Path | None = None,
    client_key: str | Path | None = None,
    client_key_password: str | None = None,
    pfx: str | Path | None = None,
    pfx_password: str | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> ClientCredentials:
    """Load and check a client certificate given as PEM files or as a PFX.

    Give either `pfx` (+ `pfx_password`) or `client_cert` (+ `client_key`, which defaults to a
    key inside `client_cert`; + `client_key_password`). `root` is the site's `root.pem`; it may
    be None only when the caller turned server verification off explicitly (then the "signed by
    the root" check is skipped). `now` returns the current aware time (injectable for tests).

    Raises `CertificateError` naming the option at fault: file missing or unreadable, wrong or
    missing password, PFX without key, key not matching the certificate, certificate expired or
    not yet valid, certificate not signed by `root`. Logs a WARNING when the client certificate
    expires within `EXPIRY_WARNING_DAYS` days.
    """
    if pfx is not None and (client_cert is not None or client_key is not None):
        raise ConfigurationError("give either pfx or client_cert/client_key, not both", field="pfx")
    if pfx is None and client_cert is None:
        raise ConfigurationError(
            "a client certificate is required: set client_cert (+ client_key) or pfx",
            field="client_cert",
        )
    if pfx is not None and client_key_password is not None:
        raise ConfigurationError(
            "client_key_password applies to client_key; for a PFX use pfx_password",
            field="client_key_password",
        )
    if pfx is None and pfx_password is not None:
        raise ConfigurationError("pfx_password is set but no pfx is given", field="pfx_password")
    # The root first: a wrong root path is the most common mistake and explains the rest.
    current = now() if now is not None else dt.datetime.now(dt.UTC)
    roots: list[x509.Certificate] = []
    if root is not None:
        roots = _load_pem_certificates(_read(root, "root"), "root", root)
        for ca in roots:
            _check_validity(ca, "root", current, "root certificate")
    if pfx is not None:
        key, certificate = _load_pfx(pfx, pfx_password)
        cert_option = "pfx"
    else:
        assert client_cert is not None
        cert_data = _read(client_cert, "client_cert")
        certificate = _load_pem_certificates(cert_data, "client_cert", client_cert)[0]
        key_path = client_key if client_key is not None else client_cert
        key_data = cert_data if client_key is None else _read(client_key, "client_key")
        if client_key is None and b"PRIVATE KEY" not in key_data:
            raise CertificateError(
                f"{client_cert} holds no private key: set client_key", field="client_key"
            )
        key = _load_pem_key(key_data, client_key_password, key_path)
        cert_option = "client_cert"
    if _public_der(key) != _public_der(certificate):
        raise CertificateError(
            "the private key does not belong to the client certificate "
            "(files from different exports?)",
            field="client_key" if pfx is None else "pfx",
        )

    _check_validity(certificate, cert_option, current, "client certificate")
    if roots and not _signed_by(certificate, roots):
        raise CertificateError(
            f"the client certificate (issuer {certificate.issuer.rfc4514_string()}) is not "
            f"signed by the root in {root} ({roots[0].subject.rfc4514_string()}); QPS would "
            "refuse it (files from another Qlik site?)",
            field=cert_option,
        )
    return ClientCredentials(certificate=certificate, key=key, roots=tuple(roots))


def client_ssl_context(credentials: ClientCredentials, *, verify: bool) -> ssl.SSLContext:
    """An `SSLContext` presenting the client certificate and trusting only `credentials.roots`.

    With `verify=False` the server certificate is not checked at all (the caller must have made
    that choice explicit and logged it). Python's `ssl` loads keys only from files, so the key is
    written, encrypted with a one-time random password, into a private (0700) temporary directory
    that is removed before returning: no plaintext key ever touches the disk.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        if not credentials.roots:
            raise ConfigurationError("root is required when verify is on", field="root")
        # Trust the site's root only, not the system store: QPS certificates come from Qlik's CA.
        pem = "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in credentials.roots
        )
        context.load_verify_locations(cadata=pem)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    one_time = secrets.token_urlsafe(32)
    directory = tempfile.mkdtemp(prefix="qlik-sso-")
    try:
        cert_path = os.path.join(directory, "client.pem")
        key_path = os.path.join(directory, "client_key.pem")
        key_pem = credentials.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(one_time.encode()),
        )
        for path, data in (
            (cert_path, credentials.certificate.public_bytes(serialization.Encoding.PEM)),
            (key_path, key_pem),
        ):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        context.load_cert_chain(cert_path, key_path, password=one_time)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return context
