"""Start-up checks of Qlik's exported client certificate files, each failure with its message."""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from pathlib import Path

import pytest

from qlik_sso_middleware.auth.certificates import (
    ClientCredentials,
    client_ssl_context,
    load_client_credentials,
)
from qlik_sso_middleware.errors import CertificateError, ConfigurationError
from qlik_sso_middleware.testing.certificates import generate_certificates

NOW = dt.datetime(2031, 6, 1, 12, 0, tzinfo=dt.UTC)
KEY_PW = "key-pw-Zq81"
PFX_PW = "pfx-pw-Xr77"


def _now() -> dt.datetime:
    return NOW


def test_pem_and_encrypted_pem_and_pfx_load(tmp_path: Path) -> None:
    plain = generate_certificates(tmp_path / "plain", now=NOW)
    enc = generate_certificates(tmp_path / "enc", now=NOW, client_key_password=KEY_PW)
    pfx = generate_certificates(tmp_path / "pfx", now=NOW, pfx_password=PFX_PW)
    nopw = generate_certificates(tmp_path / "nopw", now=NOW)
    loaded = [
        load_client_credentials(
            root=plain.root, client_cert=plain.client, client_key=plain.client_key, now=_now
        ),
        load_client_credentials(
            root=enc.root,
            client_cert=enc.client,
            client_key=enc.client_key,
            client_key_password=KEY_PW,
            now=_now,
        ),
        load_client_credentials(root=pfx.root, pfx=pfx.client_pfx, pfx_password=PFX_PW, now=_now),
        load_client_credentials(root=nopw.root, pfx=nopw.client_pfx, now=_now),
    ]
    assert [c.subject for c in loaded] == ["CN=QlikClient"] * 4
    assert all(len(c.roots) == 1 for c in loaded)
    assert all("PRIVATE" not in repr(c) and "key=" not in repr(c) for c in loaded)


def test_key_inside_the_certificate_file(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, now=NOW)
    combined = tmp_path / "combined.pem"
    combined.write_bytes(files.client.read_bytes() + files.client_key.read_bytes())
    creds = load_client_credentials(root=files.root, client_cert=combined, now=_now)
    assert creds.subject == "CN=QlikClient"
    with pytest.raises(CertificateError, match="holds no private key") as info:
        load_client_credentials(root=files.root, client_cert=files.client, now=_now)
    assert info.value.field == "client_key"


def _fails(field: str, match: str, **kw: object) -> CertificateError:
    with pytest.raises(CertificateError, match=match) as info:
        load_client_credentials(now=_now, **kw)  # type: ignore[arg-type]
    assert info.value.field == field
    for secret in (KEY_PW, PFX_PW, "wrong-pw"):
        assert secret not in str(info.value)
    return info.value


def test_missing_files(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, now=NOW)
    gone = tmp_path / "nope.pem"
    _fails(
        "root",
        "file not found",
        root=gone,
        client_cert=files.client,
        client_key=files.client_key,
    )
    _fails("client_cert", "file not found", root=files.root, client_cert=gone)
    _fails(
        "client_key", "file not found", root=files.root, client_cert=files.client, client_key=gone
    )
    _fails("pfx", "file not found", root=files.root, pfx=gone)


def test_not_pem(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, now=NOW)
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    _fails(
        "root",
        "no PEM certificate",
        root=junk,
        client_cert=files.client,
        client_key=files.client_key,
    )
    _fails(
        "client_cert",
        "no PEM certificate",
        root=files.root,
        client_cert=junk,
        client_key=files.client_key,
    )
    _fails(
        "client_key",
        "no usable PEM private key",
        root=files.root,
        client_cert=files.client,
        client_key=files.client,
    )


def test_key_passwords(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    enc = generate_certificates(tmp_path / "enc", now=NOW, client_key_password=KEY_PW)
    plain = generate_certificates(tmp_path / "plain", now=NOW)
    pem = {"root": enc.root, "client_cert": enc.client, "client_key": enc.client_key}
    _fails("client_key_password", "wrong password", client_key_password="wrong-pw", **pem)
    _fails("client_key_password", "is encrypted: set client_key_password", **pem)
    _fails(
        "client_key_password",
        "not encrypted",
        root=plain.root,
        client_cert=plain.client,
        client_key=plain.client_key,
        client_key_password="wrong-pw",
    )

    assert KEY_PW not in caplog.text
    assert "wrong-pw" not in caplog.text


def test_pfx_passwords_and_missing_key(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path / "a", now=NOW, pfx_password=PFX_PW)
    _fails(
        "pfx_password",
        "wrong pfx_password",
        root=files.root,
        pfx=files.client_pfx,
        pfx_password="wrong-pw",
    )
    _fails("pfx_password", "needs pfx_password", root=files.root, pfx=files.client_pfx)
    keyless = generate_certificates(tmp_path / "b", now=NOW, pfx_without_key=True)
    _fails("pfx", "no private key", root=keyless.root, pfx=keyless.client_pfx)


def test_key_does_not_match(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, now=NOW, mismatched_client_key=True)
    _fails(
        "client_key",
        "does not belong",
        root=files.root,
        client_cert=files.client,
        client_key=files.client_key,
    )


def test_validity_window(tmp_path: Path) -> None:
    expired = generate_certificates(
        tmp_path / "old", now=NOW, client_not_after=NOW - dt.timedelta(days=2)
    )
    _fails(
        "client_cert",
        "expired on 2031-05-30",
        root=expired.root,
        client_cert=expired.client,
        client_key=expired.client_key,
    )
    _fails("pfx", "expired", root=expired.root, pfx=expired.client_pfx)
    future = generate_certificates(
        tmp_path / "new", now=NOW, client_not_before=NOW + dt.timedelta(days=1)
    )
    _fails(
        "client_cert",
        "not valid yet",
        root=future.root,
        client_cert=future.client,
        client_key=future.client_key,
    )


def test_expiry_within_30_days_is_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="qlik_sso_middleware")
    soon = generate_certificates(
        tmp_path / "soon", now=NOW, client_not_after=NOW + dt.timedelta(days=10, hours=1)
    )
    later = generate_certificates(
        tmp_path / "later", now=NOW, client_not_after=NOW + dt.timedelta(days=31)
    )
    load_client_credentials(
        root=later.root, client_cert=later.client, client_key=later.client_key, now=_now
    )
    assert caplog.records == []
    load_client_credentials(
        root=soon.root, client_cert=soon.client, client_key=soon.client_key, now=_now
    )
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.WARNING
    assert "in 10 days" in caplog.text


def test_not_signed_by_root(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, now=NOW, client_signed_by_other_root=True)
    _fails(
        "client_cert",
        "not signed by the root",
        root=files.root,
        client_cert=files.client,
        client_key=files.client_key,
    )
    _fails("pfx", "not signed by the root", root=files.root, pfx=files.client_pfx)


def test_option_combinations(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, now=NOW)
    with pytest.raises(ConfigurationError, match="not both"):
        load_client_credentials(root=files.root, pfx=files.client_pfx, client_cert=files.client)
    with pytest.raises(ConfigurationError, match="client certificate is required"):
        load_client_credentials(root=files.root)
    with pytest.raises(ConfigurationError, match="no pfx"):
        load_client_credentials(
            root=files.root,
            client_cert=files.client,
            client_key=files.client_key,
            pfx_password="x",
        )


def test_ssl_context_trusts_only_the_root(tmp_path: Path) -> None:
    files = generate_certificates(tmp_path, now=NOW)
    creds: ClientCredentials = load_client_credentials(
        root=files.root, client_cert=files.client, client_key=files.client_key, now=_now
    )
    context = client_ssl_context(creds, verify=True)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "qlikserver-CA"),),)]
    insecure = client_ssl_context(creds, verify=False)
    assert insecure.verify_mode == ssl.CERT_NONE
    no_root = ClientCredentials(creds.certificate, creds.key, ())
    with pytest.raises(ConfigurationError, match="root is required"):
        client_ssl_context(no_root, verify=True)
