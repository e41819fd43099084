"""`qlik-sso check` for `[cloud]` against the simulated tenant: configured correctly, and each
misconfiguration (key, issuer, OAuth client, grant, user, web integration) with its fix."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from qlik_sso_middleware.cli import main
from qlik_sso_middleware.config import load_config
from qlik_sso_middleware.diagnostics import Report, run_checks
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair, WebIntegration
from tests.cloud.conftest import ADMIN, CLIENT, ISSUER, KID, NO_IMPERSONATION
from tests.servers import free_port

ORIGIN = "https://portal.acme.example"


def env_for(sim: CloudSimulator, keyfile: Path, **extra: str) -> dict[str, str]:
    env = {
        "QLIK_SSO_CLOUD_TENANT_URL": sim.tenant_url,
        "QLIK_SSO_CLOUD_VERIFY": sim.ca_file,
        "QLIK_SSO_CLOUD_CLIENT_ID": CLIENT.client_id,
        "QLIK_SSO_CLOUD_CLIENT_SECRET": CLIENT.client_secret,
        "QLIK_SSO_CLOUD_JWT_PRIVATE_KEY": str(keyfile),
        "QLIK_SSO_CLOUD_JWT_KEY_ID": KID,
        "QLIK_SSO_CLOUD_JWT_ISSUER": ISSUER,
        "QLIK_SSO_CLOUD_WEB_INTEGRATION_ID": "wi-portal",
        "QLIK_SSO_CHECK_TEST_USER": "ACME\\alice",
        "QLIK_SSO_CHECK_TEST_EMAIL": "alice@acme.example",
        "QLIK_SSO_APP_ORIGIN": ORIGIN,
    }
    env |= {f"QLIK_SSO_{k.upper()}": v for k, v in extra.items()}
    return env


@pytest.fixture
def keyfile(tmp_path: Path, signing_key: SigningKeyPair) -> Path:
    path = tmp_path / "jwt.pem"
    path.write_bytes(signing_key.private_pem)
    return path


@pytest.fixture
def tenant(live_tenant: CloudSimulator) -> CloudSimulator:
    live_tenant.add_web_integration(WebIntegration("wi-portal", (ORIGIN,)))
    return live_tenant


async def check(env: dict[str, str]) -> Report:
    return await run_checks(load_config(None, env))


def outcome(report: Report, id: str) -> tuple[str, str, str]:
    found = [s for s in report.steps if s.id == id]
    assert found, [s.render() for s in report.steps]
    return found[0].status, found[0].detail, found[0].fix or ""


async def test_a_correct_setup_passes_every_cloud_step(
    tenant: CloudSimulator, keyfile: Path
) -> None:
    report = await check(env_for(tenant, keyfile))
    assert report.ok, [s.render() for s in report.steps]
    assert [s.id for s in report.steps] == [
        "cloud.key",
        "cloud.reach",
        "cloud.oauth.client",
        "cloud.oauth.grant",
        "cloud.user",
        "cloud.jwt",
        "cloud.csrf",
        "cloud.origin",
        "cloud.cors",
    ]
    assert "RSA 2048 bits" in outcome(report, "cloud.key")[1]


@pytest.mark.parametrize(
    ("extra", "id", "fix"),
    [
        ({"cloud_jwt_key_id": "old-key"}, "cloud.jwt", "Key ID must be exactly 'old-key'"),
        ({"cloud_jwt_issuer": "https://x"}, "cloud.jwt", "Issuer must be exactly 'https://x'"),
        ({"cloud_client_secret": "nope"}, "cloud.oauth.client", "Administration > OAuth"),
        (
            {
                "cloud_client_id": NO_IMPERSONATION.client_id,
                "cloud_client_secret": NO_IMPERSONATION.client_secret,
            },
            "cloud.oauth.grant",
            "allow 'User impersonation'",
        ),
        ({"check_test_user": "ACME\\nobody"}, "cloud.user", "provision_users"),
        ({"app_origin": "https://other.example"}, "cloud.origin", "must list https://other"),
        ({"app_origin": "https://other.example"}, "cloud.cors", "call the tenant from the browser"),
    ],
)
async def test_each_misconfiguration_names_its_fix(
    tenant: CloudSimulator, keyfile: Path, extra: dict[str, str], id: str, fix: str
) -> None:
    report = await check(env_for(tenant, keyfile, **extra))
    status, _, shown = outcome(report, id)
    assert status == "fail"
    assert fix in shown
    assert not report.ok


async def test_a_wrong_signing_key_points_at_the_certificate(
    tenant: CloudSimulator, tmp_path: Path, other_key: SigningKeyPair
) -> None:
    wrong = tmp_path / "other.pem"
    wrong.write_bytes(other_key.private_pem)
    status, _, fix = outcome(await check(env_for(tenant, wrong)), "cloud.jwt")
    assert status == "fail"
    assert "public half of cloud.jwt_private_key" in fix


async def test_provisioning_is_checked_through_the_admin_client(
    tenant: CloudSimulator, keyfile: Path
) -> None:
    admin = {
        "cloud_provision_users": "true",
        "cloud_admin_client_id": ADMIN.client_id,
        "cloud_admin_client_secret": ADMIN.client_secret,
        "check_test_user": "ACME\\newcomer",
    }
    report = await check(env_for(tenant, keyfile, **admin))
    assert outcome(report, "cloud.admin")[:2] == ("pass", "not there yet (will be created)")
    assert outcome(report, "cloud.user")[0] == "pass"
    bad = await check(env_for(tenant, keyfile, **admin, cloud_admin_scopes="user_default"))
    status, _, fix = outcome(bad, "cloud.admin")
    assert status == "fail" and "admin scope" in fix


async def test_an_unreachable_tenant_fails_once_and_skips_the_rest(keyfile: Path) -> None:
    env = {
        "QLIK_SSO_CLOUD_TENANT_URL": f"https://127.0.0.1:{free_port()}",
        "QLIK_SSO_CLOUD_CLIENT_ID": "x",
        "QLIK_SSO_CLOUD_CLIENT_SECRET": "y",
    }
    report = await check(env)
    assert [(s.id, s.status) for s in report.steps] == [
        ("cloud.reach", "fail"),
        ("cloud", "skip"),
    ]
    assert "cloud.tenant_url" in report.steps[0].fix  # type: ignore[operator]


async def test_a_bad_key_file_is_its_own_step(tenant: CloudSimulator, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    report = await check(env_for(tenant, bad))
    assert [(s.id, s.status) for s in report.steps] == [("cloud.key", "fail")]


async def test_the_json_report_names_steps_and_fixes_and_no_secret(
    tenant: CloudSimulator,
    keyfile: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env_for(tenant, keyfile, cloud_jwt_key_id="old-key").items():
        monkeypatch.setenv(name, value)
    # `main` runs its own event loop: in a thread, while the tenant serves in this one.
    code = await asyncio.to_thread(main, ["check", "--json"])
    out = capsys.readouterr().out
    document = json.loads(out)
    assert code == 1
    failed = [s for s in document["steps"] if s["status"] == "fail"]
    assert [s["id"] for s in failed] == ["cloud.jwt"]
    assert "Key ID" in failed[0]["fix"]
    for secret in (CLIENT.client_secret, "PRIVATE KEY", "eyJ"):
        assert secret not in out
