"""DNS, TCP and TLS probes for `qlik-sso check`, with certificate dates read by `cryptography`."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

__all__ = [
    "TLSOutcome",
    "certificate_names",
    "certificate_summary",
    "fetch_certificate",
    "file_certificates",
    "resolve",
    "speaks_http",
    "speaks_tls",
    "tcp_connect",
    "tls_handshake",
]


async def resolve(host: str, port: int) -> list[str]:
    """Addresses of `host` (raises `socket.gaierror`)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def tcp_connect(host: str, port: int, limit: float) -> None:
    """Open and close a TCP connection (raises `OSError` / `TimeoutError`)."""
    async with asyncio.timeout(limit):
        _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await _closed(writer)


async def _closed(writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(2):
            await writer.wait_closed()
    except (OSError, TimeoutError, ssl.SSLError):
        pass  # the peer may reset a connection we are dropping anyway


@dataclass(frozen=True)
class TLSOutcome:
    ok: bool
    error: str = ""
    #: "untrusted" | "hostname" | "expired" | "protocol" | "" (ok)
    kind: str = ""


async def tls_handshake(
    host: str, port: int, context: ssl.SSLContext, server_name: str, limit: float
) -> TLSOutcome:
    """A full handshake with `context` (whatever it verifies); classifies the failure."""
    try:
        async with asyncio.timeout(limit):
            _, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=server_name
            )
    except ssl.SSLCertVerificationError as exc:
        message = str(exc.verify_message or exc)
        lowered = message.lower()
        if "hostname" in lowered or "ip address mismatch" in lowered:
            return TLSOutcome(False, message, "hostname")
        if "expired" in lowered:
            return TLSOutcome(False, message, "expired")
        return TLSOutcome(False, message, "untrusted")
    except ssl.SSLError as exc:
        return TLSOutcome(False, str(exc.reason or exc), "protocol")
    except (OSError, TimeoutError) as exc:
        return TLSOutcome(False, str(exc) or type(exc).__name__, "protocol")
    writer.close()
    await _closed(writer)
    return TLSOutcome(True)


async def fetch_certificate(
    host: str, port: int, server_name: str, limit: float
) -> x509.Certificate | None:
    """The server's certificate without verifying it (to report names and dates)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(limit):
            _, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=server_name
            )
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    writer.close()
    await _closed(writer)
    return x509.load_der_x509_certificate(der) if der else None


async def speaks_tls(host: str, port: int, limit: float) -> bool:
    """Does the port complete a TLS handshake (any certificate)? For `http://` pointed at https."""
    return await fetch_certificate(host, port, host, limit) is not None


async def speaks_http(host: str, port: int, limit: float) -> bool:
    """Does the port answer plain HTTP? For `https://` pointed at an http port."""
    try:
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"HEAD / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii"))
            await writer.drain()
            first = await reader.read(5)
    except (OSError, TimeoutError, UnicodeError):
        return False
    writer.close()
    await _closed(writer)
    return first == b"HTTP/"


def file_certificates(path: str | Path) -> list[x509.Certificate]:
    """PEM certificates in `path` ([] when unreadable: the loader reports that precisely)."""
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError):
        return []


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The DNS names a certificate holds (subject alternative names, else its CN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        names = [str(a.value) for a in common]
    return names


def certificate_summary(cert: x509.Certificate, now: dt.datetime) -> tuple[str, bool]:
    """("CN=x, valid 2026-01-01..2027-01-01 (300 days left)", expired_or_not_yet_valid)."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    subject = cert.subject.rfc4514_string() or "(no subject)"
    names = ""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        listed = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        listed += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
        names = f", names {', '.join(listed)}" if listed else ""
    except x509.ExtensionNotFound:
        pass
    period = f"{start:%Y-%m-%d}..{end:%Y-%m-%d}"
    if now > end:
        return f"{subject}{names}, EXPIRED on {end:%Y-%m-%d}", True
    if now < start:
        return f"{subject}{names}, NOT YET VALID until {start:%Y-%m-%d}", True
    return f"{subject}{names}, valid {period} ({(end - now).days} days left)", False
