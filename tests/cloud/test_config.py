"""`[cloud]` in the configuration: a Qlik Cloud tenant from TOML + `QLIK_SSO_CLOUD_*`, errors that
name the file, the line and the key, secrets from the environment and never shown."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from qlik_sso_middleware import ConfigurationError, QlikIdentity, QlikSSOMiddleware
from qlik_sso_middleware.cloud import CloudTarget
from qlik_sso_middleware.config import build_cloud_target, build_sso, load_config
from qlik_sso_middleware.errors import CertificateError
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair
from tests.cloud.apps import signed_in
from tests.cloud.conftest import CLIENT, ISSUER, KID
from tests.servers import serve
from tests.test_config import error_of, write

CLOUD = """\
[cloud]
tenant_url = "https://acme.eu.qlikcloud.com"
client_id = "embed-client"
scopes = ["user_default"]
jwt_private_key = "keys/jwt.pem"
jwt_key_id = "portal-key-1"
jwt_issuer = "https://portal.example"
web_integration_id = "wi-1"
mount_path = "/analytics/"
subject = "{user_id}"
email_attribute = "mail"
token_margin = 120
"""
SECRET = {"QLIK_SSO_CLOUD_CLIENT_SECRET": "embed-secret-123"}


@pytest.fixture
def keyfile(tmp_path: Path, signing_key: SigningKeyPair) -> Path:
    (tmp_path / "keys").mkdir()
    path = tmp_path / "keys" / "jwt.pem"
    path.write_bytes(signing_key.private_pem)
    return path


def test_a_cloud_tenant_alone_is_a_whole_configuration(tmp_path: Path, keyfile: Path) -> None:
    config = load_config(write(tmp_path, CLOUD), SECRET)
    assert config.qlik.url is None
    target = build_cloud_target(config)
    assert isinstance(target, CloudTarget)
    assert target.tenant_url == "https://acme.eu.qlikcloud.com"
    assert target.oauth is not None and target.oauth.client_secret.reveal() == "embed-secret-123"
    assert target.jwt is not None and target.jwt.private_key == str(keyfile)  # file-relative
    assert (target.mount_path, target.token_margin, target.web_integration_id) == (
        "/analytics/",
        120.0,
        "wi-1",
    )
    assert target.identity.subject == "{user_id}"
    assert target.identity.email_attribute == "mail"
    assert "embed-secret-123" not in repr(config) + repr(target)


def test_without_cloud_the_qlik_url_is_still_required(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "[auth]\n"))
    assert "qlik.url: is required" in message and "[cloud]" in message


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        (CLOUD, {}, ":3: cloud.client_secret: is required with cloud.client_id"),
        (
            CLOUD.replace('jwt_issuer = "https://portal.example"\n', ""),
            SECRET,
            ":5: cloud.jwt_issuer: is required with cloud.jwt_private_key",
        ),
        ('[cloud]\nclient_id = "x"\n', {}, ":2: cloud.client_id: needs cloud.tenant_url"),
        (
            '[cloud]\ntenant_url = "https://acme.eu.qlikcloud.com"\n',
            {},
            ":2: cloud.tenant_url: give client_id + client_secret",
        ),
        (
            CLOUD + "provision_users = true\n",
            SECRET,
            ":13: cloud.provision_users: needs admin_client_id",
        ),
        (CLOUD + "verify = 3\n", SECRET, ":13: cloud.verify: must be true or false or a string"),
        (CLOUD + "tokenmargin = 3\n", SECRET, "did you mean 'token_margin'?"),
    ],
)
def test_cloud_keys_that_belong_together_are_checked_at_their_line(
    tmp_path: Path, keyfile: Path, text: str, env: dict[str, str], expected: str
) -> None:
    assert expected in error_of(write(tmp_path, text), env)


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (('tenant_url = "https://', 'tenant_url = "http://'), ":2: cloud.tenant_url: Qlik Cloud"),
        (('mount_path = "/analytics/"', 'mount_path = "analytics"'), ":9: cloud.mount_path:"),
        (('scopes = ["user_default"]', 'scopes = ["user default"]'), ":4: cloud.scopes:"),
        (('subject = "{user_id}"', 'subject = "{login}"'), ":10: cloud.subject:"),
        (("token_margin = 120", "token_margin = -1"), ":12: cloud.token_margin:"),
        (('jwt_key_id = "portal-key-1"', 'jwt_key_id = "a\\tb"'), ":6: cloud.jwt_key_id:"),
    ],
)
def test_object_errors_are_located_at_the_cloud_key(
    tmp_path: Path, keyfile: Path, replace: tuple[str, str], expected: str
) -> None:
    config = load_config(write(tmp_path, CLOUD.replace(*replace)), SECRET)
    with pytest.raises(ConfigurationError) as caught:
        build_cloud_target(config)
    assert expected in str(caught.value)


def test_a_bad_key_file_is_a_certificate_error_at_its_line(tmp_path: Path, keyfile: Path) -> None:
    keyfile.write_text("not a key")
    config = load_config(write(tmp_path, CLOUD), SECRET)
    with pytest.raises(CertificateError) as caught:
        build_cloud_target(config)
    assert ":5: cloud.jwt_private_key:" in str(caught.value)
    (tmp_path / "keys" / "jwt.pem").unlink()
    assert ":5: cloud.jwt_private_key: file not found" in error_of(write(tmp_path, CLOUD), SECRET)


def _user(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.headers.get("x-test-user")
    return QlikIdentity("ACME", user) if user else None


async def test_from_config_serves_the_tenants_token_broker(
    tmp_path: Path, live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    shutil.copy(live_tenant.ca_file, tmp_path / "tenant-ca.pem")
    text = (
        f'[cloud]\ntenant_url = "{live_tenant.tenant_url}"\nclient_id = "{CLIENT.client_id}"\n'
        'verify = "tenant-ca.pem"\n'
    )
    env = {"QLIK_SSO_CLOUD_CLIENT_SECRET": CLIENT.client_secret}
    app = QlikSSOMiddleware.from_config(Starlette(), write(tmp_path, text), env, resolver=_user)
    async with signed_in(app, None) as (_url, client):
        answer = await client.post("/qlik-cloud/access-token", headers={"x-test-user": "alice"})
    assert answer.status_code == 200
    assert live_tenant.tokens_issued("ACME\\alice") == 1


def test_qlik_and_cloud_together_make_two_targets(tmp_path: Path, keyfile: Path) -> None:
    text = '[qlik]\nurl = "https://qlik.acme.com"\n' + CLOUD
    sso = build_sso(load_config(write(tmp_path, text), SECRET), resolver=_user)
    assert sorted(u.target.mount_path or "" for u in sso.upstreams) == ["/analytics/", "/sso/"]
    assert sso.upstream_named("cloud").target.name == "cloud"


def test_issuer_and_key_id_reach_the_signer(tmp_path: Path, keyfile: Path) -> None:
    text = CLOUD.replace("https://portal.example", ISSUER).replace("portal-key-1", KID)
    target = build_cloud_target(load_config(write(tmp_path, text), SECRET))
    assert target is not None and target.jwt is not None
    assert (target.jwt.issuer, target.jwt.key_id) == (ISSUER, KID)


async def test_qlik_sso_serve_serves_a_tenant_from_the_configuration(
    tmp_path: Path, live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    from qlik_sso_middleware.serve.app import build_serve_app

    (tmp_path / "jwt.pem").write_bytes(signing_key.private_pem)
    text = (
        f'[cloud]\ntenant_url = "{live_tenant.tenant_url}"\nclient_id = "{CLIENT.client_id}"\n'
        f'jwt_private_key = "jwt.pem"\njwt_key_id = "{KID}"\njwt_issuer = "{ISSUER}"\n'
        f'verify = "{live_tenant.ca_file}"\n'
        '[resolver]\nkind = "trusted_header"\n[serve]\nupstream = "http://127.0.0.1:9"\n'
    )
    env = {"QLIK_SSO_CLOUD_CLIENT_SECRET": CLIENT.client_secret}
    proxy = build_serve_app(load_config(write(tmp_path, text), env))
    async with serve(proxy) as url, httpx.AsyncClient(base_url=url) as client:
        user = {"x-remote-user": "ACME\\alice"}
        token = await client.post("/qlik-cloud/access-token", headers=user)
        me = await client.get("/qlik-cloud/api/v1/users/me", headers=user)
    assert token.status_code == 200
    assert live_tenant.tokens_issued("ACME\\alice") == 1
    # A trusted header names the user only; Qlik's JWT login also needs an e-mail address.
    assert me.status_code == 403
    assert me.json()["error"] == "This user cannot be signed in to Qlik"
    assert not [r for r in live_tenant.requests if r.path == "/login/jwt-session"]
