"""Generate the certificate set that Qlik Sense's QMC "Export certificates" produces (for tests).

Qlik exports, per node: `root.pem` (the site CA), `server.pem` + `server_key.pem` (the node's
certificate, signed by the root) and `client.pem` + `client_key.pem` / `client.pfx` (the certificate
an API client presents on port 4243, signed by the same root). `generate_certificates` writes the
same files, plus `root_key.pem` so tests can sign more certificates.

`generate_qlik_certificates` writes the variant Qlik's repository service itself generates (the
certificates most sites keep on the proxy and on port 4243): RSA 2048 keys, SHA-256 signatures, a
root named `<host>-CA` and a server certificate that names its host in the subject CN only, with
no subjectAltName. Evidence and what is unknown: docs/certificates.md. Clients that follow RFC 6125
strictly (rustls, so the pyreqwest engine) cannot verify such a certificate by name; OpenSSL-based
ones (Python's `ssl`, so aiohttp, httpx on aiohttp and `websockets`) fall back to the CN.

The keyword options build the broken sets that a deployment meets in practice (expired client
certificate, a client signed by another site's root, a PFX without its key, a key that belongs to
another certificate) so that start-up validation can be tested against real files.

Hazard: these are test credentials. Private keys are written with mode 0600, but nothing here is
meant for production; EC P-256 keys are used because RSA key generation is slow.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateFiles", "generate_certificates", "generate_qlik_certificates"]

#: A private key of either kind the generator writes.
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1", "::1", "qlikserver")


@dataclass(frozen=True)
class CertificateFiles:
    """Paths of a generated certificate set (all inside `directory`).

    `pfx_password` is the password of `client.pfx` (None: unencrypted). `client_key_password` is the
    password of `client_key.pem` (None: unencrypted).
    """

    directory: Path
    root: Path
    root_key: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path
    client_pfx: Path
    pfx_password: str | None
    client_key_password: str | None = None


def _new_key(key_type: str = "ec") -> PrivateKey:
    if key_type == "rsa":
        # Qlik's generated certificates carry 2048-bit RSA keys (docs/certificates.md).
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_root(
    common_name: str, now: dt.datetime, key_type: str = "ec"
) -> tuple[x509.Certificate, PrivateKey]:
    key = _new_key(key_type)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _make_leaf(
    *,
    common_name: str,
    key: PrivateKey,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    usage: x509.ObjectIdentifier,
    names: Sequence[str] = (),
    san: bool = True,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if names and san:
        builder = builder.add_extension(_san(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes, *, secret: bool = False) -> Path:
    # Create with the final mode so a key is never world-readable, not even briefly.
    mode = 0o600 if secret else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)
    return path


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKey, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def generate_certificates(
    directory: str | Path,
    *,
    server_names: Sequence[str] = _DEFAULT_SERVER_NAMES,
    pfx_password: str | None = None,
    client_key_password: str | None = None,
    client_not_before: dt.datetime | None = None,
    client_not_after: dt.datetime | None = None,
    client_signed_by_other_root: bool = False,
    server_signed_by_other_root: bool = False,
    pfx_without_key: bool = False,
    mismatched_client_key: bool = False,
    root_common_name: str = "qlikserver-CA",
    client_common_name: str = "QlikClient",
    now: dt.datetime | None = None,
    server_san: bool = True,
    key_type: str = "ec",
) -> CertificateFiles:
    """Write a Qlik-style certificate set into `directory` (created if missing); return the paths.

    - `server_names`: SANs of `server.pem` (IP literals become IP entries, the rest DNS entries);
      its common name is the first name.
    - `pfx_password` / `client_key_password`: encrypt `client.pfx` / `client_key.pem`.
    - `client_not_before` / `client_not_after`: validity window of the client certificate (default:
      yesterday until in ten years); use them for expired, not-yet-valid or expiring-soon cases.
    - `client_signed_by_other_root` / `server_signed_by_other_root`: sign that certificate with a
      second CA that is *not* written as `root.pem` (a certificate from another site).
    - `pfx_without_key`: `client.pfx` holds the certificates only.
    - `mismatched_client_key`: `client_key.pem` belongs to a different key pair (PFX unaffected).
    - `now`: the reference time (timezone-aware), for deterministic validity windows.
    - `server_san`: False leaves the subjectAltName out of `server.pem`, so only its CN (the first
      of `server_names`) names the host, as in the certificates Qlik generates.
    - `key_type`: `"ec"` (P-256, fast to generate) or `"rsa"` (2048 bits, as Qlik's).
    """
    if key_type not in ("ec", "rsa"):
        raise ValueError("key_type must be 'ec' or 'rsa'")
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)

    root, root_key = _make_root(root_common_name, now, key_type)
    other_root, other_root_key = (
        _make_root(f"other-{root_common_name}", now, key_type)
        if client_signed_by_other_root or server_signed_by_other_root
        else (root, root_key)
    )

    server_key = _new_key(key_type)
    server_issuer, server_issuer_key = (
        (other_root, other_root_key) if server_signed_by_other_root else (root, root_key)
    )
    server = _make_leaf(
        common_name=server_names[0] if server_names else "qlikserver",
        key=server_key,
        issuer=server_issuer,
        issuer_key=server_issuer_key,
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=3650),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        names=server_names,
        san=server_san,
    )

    client_key = _new_key(key_type)
    client_issuer, client_issuer_key = (
        (other_root, other_root_key) if client_signed_by_other_root else (root, root_key)
    )
    client = _make_leaf(
        common_name=client_common_name,
        key=client_key,
        issuer=client_issuer,
        issuer_key=client_issuer_key,
        not_before=client_not_before or min(now, client_not_after or now) - dt.timedelta(days=1),
        not_after=client_not_after or now + dt.timedelta(days=3650),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    written_key = _new_key(key_type) if mismatched_client_key else client_key

    pfx_encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(pfx_password.encode())
        if pfx_password is not None
        else serialization.NoEncryption()
    )
    pfx = pkcs12.serialize_key_and_certificates(
        b"QlikClient",
        # PKCS#12 serialisation refuses a key of another certificate: the PFX keeps the right one.
        None if pfx_without_key else client_key,
        client,
        [client_issuer],
        pfx_encryption,
    )

    return CertificateFiles(
        directory=folder,
        root=_write(folder / "root.pem", _cert_pem(root)),
        root_key=_write(folder / "root_key.pem", _key_pem(root_key), secret=True),
        server=_write(folder / "server.pem", _cert_pem(server)),
        server_key=_write(folder / "server_key.pem", _key_pem(server_key), secret=True),
        client=_write(folder / "client.pem", _cert_pem(client)),
        client_key=_write(
            folder / "client_key.pem", _key_pem(written_key, client_key_password), secret=True
        ),
        client_pfx=_write(folder / "client.pfx", pfx, secret=True),
        pfx_password=pfx_password,
        client_key_password=client_key_password,
    )


def generate_qlik_certificates(
    directory: str | Path, *, hostname: str = "localhost", **options: object
) -> CertificateFiles:
    """The set Qlik's repository service generates for a node named `hostname`: RSA 2048 keys, root
    `<hostname>-CA`, server certificate `CN=<hostname>` with no subjectAltName (so a client must
    connect by that name; an IP address cannot match). Other `generate_certificates` options pass
    through (an expired client, a foreign root, ...)."""
    return generate_certificates(
        directory,
        server_names=(hostname,),
        server_san=False,
        key_type="rsa",
        root_common_name=f"{hostname}-CA",
        **options,  # type: ignore[arg-type]
    )
