"""The generated certificate set behaves like Qlik's export: a real mutual-TLS handshake works."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from qlik_sso_middleware.testing.certificates import generate_certificates


async def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, name: str) -> bytes:
    """Run one TLS exchange over a loopback socket; returns what the server echoed back."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await reader.readexactly(4)
            writer.write(data)
            await writer.drain()
        except (ssl.SSLError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname=name
        )
        writer.write(b"ping")
        await writer.drain()
        data = await reader.readexactly(4)
        writer.close()
        return data
    finally:
        server.close()
        await server.wait_closed()


def _contexts(files_root: Path, server: Path, server_key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files_root))
    ctx.load_cert_chain(str(server), str(server_key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def test_mutual_tls_with_pem_and_encrypted_key(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, client_key_password="s3cret")
    server_ctx = _contexts(files.root, files.server, files.server_key)
    client_ctx = ssl.create_default_context(cafile=str(files.root))
    client_ctx.load_cert_chain(str(files.client), str(files.client_key), password="s3cret")
    assert await _handshake(server_ctx, client_ctx, "localhost") == b"ping"
    # An IP SAN is verified too.
    assert await _handshake(server_ctx, client_ctx, "127.0.0.1") == b"ping"


async def test_server_name_not_in_sans_is_refused(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, server_names=("qlikserver",))
    server_ctx = _contexts(files.root, files.server, files.server_key)
    client_ctx = ssl.create_default_context(cafile=str(files.root))
    client_ctx.load_cert_chain(str(files.client), str(files.client_key))
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(server_ctx, client_ctx, "localhost")
    assert await _handshake(server_ctx, client_ctx, "qlikserver") == b"ping"


async def test_client_signed_by_other_root_is_refused_by_server(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, client_signed_by_other_root=True)
    server_ctx = _contexts(files.root, files.server, files.server_key)
    client_ctx = ssl.create_default_context(cafile=str(files.root))
    client_ctx.load_cert_chain(str(files.client), str(files.client_key))
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await _handshake(server_ctx, client_ctx, "localhost")


def test_pfx_contents_and_password(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, pfx_password="pfx-pw")
    data = files.client_pfx.read_bytes()
    with pytest.raises(ValueError, match="password"):
        pkcs12.load_key_and_certificates(data, b"wrong")
    key, cert, extra = pkcs12.load_key_and_certificates(data, b"pfx-pw")
    assert key is not None
    assert cert is not None
    assert cert == x509.load_pem_x509_certificate(files.client.read_bytes())
    assert [c.subject for c in extra] == [
        x509.load_pem_x509_certificate(files.root.read_bytes()).subject
    ]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(
        serialization.Encoding.PEM, pub
    ) == cert.public_key().public_bytes(serialization.Encoding.PEM, pub)


def test_failure_options(tmp_path: Path) -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    files = generate_certificates(
        tmp_path,
        now=now,
        client_not_before=now - dt.timedelta(days=10),
        client_not_after=now - dt.timedelta(days=1),
        pfx_without_key=True,
        mismatched_client_key=True,
    )
    cert = x509.load_pem_x509_certificate(files.client.read_bytes())
    assert cert.not_valid_after_utc == now - dt.timedelta(days=1)
    key, _, extra = pkcs12.load_key_and_certificates(files.client_pfx.read_bytes(), None)
    assert key is None
    assert cert in extra
    pem_key = serialization.load_pem_private_key(files.client_key.read_bytes(), None)
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    assert pem_key.public_key().public_bytes(
        serialization.Encoding.PEM, pub
    ) != cert.public_key().public_bytes(serialization.Encoding.PEM, pub)


def test_keys_are_private(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path / "nested")
    for path in (files.root_key, files.server_key, files.client_key, files.client_pfx):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.root.stat().st_mode) == 0o644
