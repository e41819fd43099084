"""`qlik-sso check` against the simulator: configured correctly, and each misconfiguration with its
specific message and fix. Real sockets, real TLS with generated certificates, real WebSockets."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from qlik_sso_middleware.cli import main
from qlik_sso_middleware.config import load_config
from qlik_sso_middleware.diagnostics import Report, run_checks
from qlik_sso_middleware.target import reqwest_installed
from qlik_sso_middleware.testing import (
    QlikSimulator,
    SimulatorThread,
    VirtualProxy,
    generate_certificates,
    generate_qlik_certificates,
)
from tests.servers import serve

USER = "ACME\\checker"


def sim_env(sim: QlikSimulator, *, qps: bool = True, **extra: str) -> dict[str, str]:
    env = {"QLIK_SSO_QLIK_URL": sim.proxy_url, "QLIK_SSO_CHECK_TEST_USER": USER}
    if qps and sim.certificates is not None and sim.api_url is not None:
        env |= {
            "QLIK_SSO_QPS_API_URL": sim.api_url,
            "QLIK_SSO_QPS_ROOT": str(sim.certificates.root),
            "QLIK_SSO_QPS_CLIENT_CERT": str(sim.certificates.client),
            "QLIK_SSO_QPS_CLIENT_KEY": str(sim.certificates.client_key),
        }
    env |= {f"QLIK_SSO_{k.upper()}": v for k, v in extra.items()}
    return env


async def check(env: dict[str, str]) -> Report:
    return await run_checks(load_config(None, env))


def step(report: Report, id: str) -> tuple[str, str, str]:
    found = [s for s in report.steps if s.id == id]
    assert found, [s.render() for s in report.steps]
    return found[0].status, found[0].detail, found[0].fix or ""


def failed_ids(report: Report) -> list[str]:
    return [s.id for s in report.failures()]


async def only_failure(env: dict[str, str], expected: str) -> tuple[str, str]:
    report = await check(env)
    assert failed_ids(report) == [expected], [s.render() for s in report.steps]
    _, detail, fix = step(report, expected)
    return detail, fix


def vp(**options: object) -> Sequence[VirtualProxy]:
    return [VirtualProxy(prefix="sso", header_name="hdr-usr", **options)]  # type: ignore[arg-type]


async def test_correct_configuration_passes_and_leaves_no_session() -> None:
    async with QlikSimulator(vp()) as sim:
        report = await check(sim_env(sim, app_origin="http://portal.example:8000"))
        assert report.ok, [s.render() for s in report.steps]
        ids = [s.id for s in report.steps if s.status == "pass"]
        for expected in (
            "proxy.dns", "proxy.tcp", "qps.dns", "qps.tcp", "qps.root.dates", "qps.server.dates",
            "qps.client_cert.dates", "qps.tls", "vp.exists", "login", "qps.user", "csrf",
            "websocket", "cookie",
        ):  # fmt: skip
            assert expected in ids
        assert "X-Qlik-Session-sso-HTTP" in step(report, "login")[1]
        assert step(report, "qps.user")[1] == USER
        assert sim.logins(USER) == 1
        assert sim.live_sessions(USER) == []


async def test_without_qps_xrfkey_goes_through_the_proxy() -> None:
    async with QlikSimulator(vp(), api=False) as sim:
        report = await check(sim_env(sim, qps=False))
        assert report.ok
        assert step(report, "xrfkey")[0] == "pass"
        assert step(report, "qps")[0] == "skip"


async def test_wrong_prefix() -> None:
    async with QlikSimulator(vp()) as sim:
        detail, fix = await only_failure(sim_env(sim, qlik_prefix="sales"), "vp.exists")
        assert "400" in detail
        assert "if one has the prefix 'sales', link it to this proxy service" in fix


async def test_wrong_header_name_names_the_right_one() -> None:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="X-Remote-User")]) as sim:
        detail, fix = await only_failure(sim_env(sim), "login")
        assert "did not log the user in with the header 'hdr-usr'" in detail
        assert "set auth.header_name = 'X-Remote-User'" in fix
        assert sim.live_sessions() == []


async def test_unguessable_header_name_explains_the_qmc_settings() -> None:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="X-Acme-Id")]) as sim:
        _, fix = await only_failure(sim_env(sim, qps=False), "login")
        assert "Qlik ignored the header 'hdr-usr'" in fix
        assert "'Header authentication header name' to exactly 'hdr-usr'" in fix


async def test_static_directory_virtual_proxy() -> None:
    vps = vp(auth="header_static", static_user_directory="CORP")
    async with QlikSimulator(vps) as sim:
        _, fix = await only_failure(sim_env(sim), "login")
        assert "static user directory 'CORP': set auth.static_user_directory = 'CORP'" in fix
        assert sim.live_sessions() == []


async def test_ticket_virtual_proxy_when_header_expected() -> None:
    async with QlikSimulator(vp(auth="ticket")) as sim:
        _, fix = await only_failure(sim_env(sim), "login")
        assert "this is a ticket virtual proxy" in fix
        assert "auth.strategy = 'session_api'" in fix


async def test_wrong_cookie_name() -> None:
    async with QlikSimulator(vp(cookie_name="X-Qlik-Session-Acme")) as sim:
        detail, fix = await only_failure(sim_env(sim), "login")
        assert "'X-Qlik-Session-Acme-HTTP'" in detail
        assert "set qlik.cookie_name = 'X-Qlik-Session-Acme'" in fix
        assert sim.live_sessions() == []  # the session Qlik made anyway was ended


async def test_cookie_name_with_http_suffix() -> None:
    async with QlikSimulator(vp()) as sim:
        env = sim_env(sim, qlik_cookie_name="X-Qlik-Session-sso-HTTP")
        _, fix = await only_failure(env, "login")
        assert "set qlik.cookie_name = 'X-Qlik-Session-sso' (without '-HTTP')" in fix


async def test_origin_not_in_host_allow_list() -> None:
    async with QlikSimulator(vp()) as sim:
        env = sim_env(sim, app_origin="https://portal.example", qlik_host_header="127.0.0.1")
        detail, fix = await only_failure(env, "websocket")
        assert "403" in detail
        assert "add 'portal.example' to the virtual proxy's Host allow list" in fix
    async with QlikSimulator(vp(host_allow_list=("portal.example",))) as sim:
        env = sim_env(sim, app_origin="https://portal.example", qlik_host_header="127.0.0.1")
        assert (await check(env)).ok


async def test_unreachable_host_and_unknown_name() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {"QLIK_SSO_QLIK_URL": f"http://127.0.0.1:{port}", "QLIK_SSO_CHECK_TEST_USER": USER}
    report = await check(env)
    assert failed_ids(report) == ["proxy.tcp"]
    assert "check the port in qlik.url" in step(report, "proxy.tcp")[2]
    env["QLIK_SSO_QLIK_URL"] = "http://qlik.invalid"
    report = await check(env)
    assert failed_ids(report) == ["proxy.dns"]
    assert "cannot resolve 'qlik.invalid'" in step(report, "proxy.dns")[1]


async def test_proxy_certificate_not_trusted_then_trusted() -> None:
    async with QlikSimulator(vp(), https=True) as sim:
        assert sim.certificates is not None
        detail, fix = await only_failure(sim_env(sim), "proxy.tls")
        assert "CN=localhost" in detail and "days left" in detail
        assert "set qlik.verify to the CA bundle" in fix
        report = await check(sim_env(sim, qlik_verify=str(sim.certificates.root)))
        assert report.ok, [s.render() for s in report.steps]


async def test_proxy_certificate_for_another_name(tmp_path: Path) -> None:
    generate_certificates(tmp_path, server_names=("qlik.acme.test",))
    async with QlikSimulator(vp(), https=True, cert_dir=tmp_path) as sim:
        env = sim_env(sim, qlik_verify=str(tmp_path / "root.pem"))
        report = await check(env)
        assert failed_ids(report) == ["proxy.tls", "qps.tls"]
        _, detail, fix = step(report, "proxy.tls")
        assert "qlik.acme.test" in detail
        assert "does not name '127.0.0.1'" in fix
        assert "set qps.server_name" in step(report, "qps.tls")[2]
        report = await check(env | {"QLIK_SSO_QPS_SERVER_NAME": "qlik.acme.test"})
        assert failed_ids(report) == ["proxy.tls"]


async def test_client_certificate_from_another_site(tmp_path: Path) -> None:
    other = generate_certificates(tmp_path, client_signed_by_other_root=True)
    async with QlikSimulator(vp()) as sim:
        env = sim_env(sim) | {
            "QLIK_SSO_QPS_CLIENT_CERT": str(other.client),
            "QLIK_SSO_QPS_CLIENT_KEY": str(other.client_key),
        }
        report = await check(env)
        assert failed_ids(report) == ["qps.credentials"]  # found before QPS is even called
        _, detail, fix = step(report, "qps.credentials")
        assert "qps.client_cert: the client certificate" in detail
        assert "not signed by the root" in detail and "another Qlik site" in detail
        assert "export the certificates again from the QMC" in fix


async def test_root_from_another_site(tmp_path: Path) -> None:
    # QPS presents a server certificate from another CA than the root.pem we were given.
    generate_certificates(tmp_path, server_signed_by_other_root=True)
    async with QlikSimulator(vp(), cert_dir=tmp_path) as sim:
        report = await check(sim_env(sim))
        assert failed_ids(report) == ["qps.tls"]
        assert "not signed by the configured root" in step(report, "qps.tls")[1]
        assert "root.pem exported from THIS Qlik site" in step(report, "qps.tls")[2]


async def test_expired_client_certificate(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    other = generate_certificates(
        tmp_path,
        client_not_before=now - dt.timedelta(days=400),
        client_not_after=now - dt.timedelta(days=1),
    )
    async with QlikSimulator(vp()) as sim:
        env = sim_env(sim) | {
            "QLIK_SSO_QPS_ROOT": str(other.root),
            "QLIK_SSO_QPS_CLIENT_CERT": str(other.client),
            "QLIK_SSO_QPS_CLIENT_KEY": str(other.client_key),
        }
        report = await check(env)
        assert "EXPIRED" in step(report, "qps.client_cert.dates")[1]
        assert "qps.credentials" in failed_ids(report)


async def test_cross_site_embedding_needs_samesite_none_secure(tmp_path: Path) -> None:
    async with QlikSimulator(vp()) as sim:
        detail, fix = await only_failure(sim_env(sim, app_embedding="cross-site"), "cookie")
        assert "over plain http" in detail
        assert "SameSite attribute (HTTPS) = None" in fix
    vps = vp(samesite_https="None", secure_https=True)
    async with QlikSimulator(vps, https=True) as sim:
        assert sim.certificates is not None
        env = sim_env(
            sim,
            app_embedding="cross-site",
            qlik_verify=str(sim.certificates.root),
            app_origin="https://portal.example",
            qlik_host_header="localhost",
        )
        report = await check(env)
        assert step(report, "cookie")[0] == "pass"


async def test_missing_test_user() -> None:
    async with QlikSimulator(vp(), api=False) as sim:
        env = {"QLIK_SSO_QLIK_URL": sim.proxy_url}
        _, fix = await only_failure(env, "login")
        assert "set [check] test_user" in fix


async def test_html_login_page_instead_of_qlik() -> None:
    async def page(request: object) -> HTMLResponse:
        return HTMLResponse("<html><form>Sign in</form></html>")

    app = Starlette(routes=[Route("/{path:path}", page)])
    async with serve(app) as url:
        env = {"QLIK_SSO_QLIK_URL": url, "QLIK_SSO_CHECK_TEST_USER": USER}
        detail, fix = await only_failure(env, "vp.exists")
        assert "text/html" in detail
        assert "must be the Qlik proxy itself" in fix


async def test_session_api_strategy() -> None:
    async with QlikSimulator(vp(auth="ticket")) as sim:
        report = await check(sim_env(sim, auth_strategy="session_api"))
        assert report.ok, [s.render() for s in report.steps]
        assert step(report, "cookie")[0] == "skip"
        assert sim.live_sessions(USER) == []


async def test_ticket_strategy() -> None:
    async with QlikSimulator(vp(auth="ticket")) as sim:
        report = await check(sim_env(sim, auth_strategy="ticket"))
        assert report.ok, [s.render() for s in report.steps]
        assert step(report, "cookie")[0] == "pass"  # the ticket's session came with a cookie
        assert sim.live_sessions(USER) == []


async def test_session_api_with_unusable_certificates(tmp_path: Path) -> None:
    other = generate_certificates(tmp_path, client_signed_by_other_root=True)
    async with QlikSimulator(vp()) as sim:
        env = sim_env(sim, auth_strategy="session_api") | {
            "QLIK_SSO_QPS_CLIENT_CERT": str(other.client),
            "QLIK_SSO_QPS_CLIENT_KEY": str(other.client_key),
        }
        report = await check(env)
        assert failed_ids(report) == ["qps.credentials"]
        assert step(report, "vp.exists")[0] == "pass"
        assert step(report, "login")[0] == "skip"


def test_cli_json_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SimulatorThread(vp(), api=False) as sim:
        path = tmp_path / "qlik-sso.toml"
        path.write_text(
            f'[qlik]\nurl = "{sim.proxy_url}"\n[check]\ntest_user = "ACME\\\\checker"\n'
        )
        assert main(["check", "--config", str(path), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["ok"] is True
        assert {s["id"] for s in result["steps"]} >= {"vp.exists", "login", "websocket"}
        path.write_text(
            path.read_text().replace('"sso"', '"x"') + '[auth]\nheader_name = "X-Odd"\n'
        )
        assert main(["check", "--config", str(path)]) == 1
        out = capsys.readouterr().out
        assert "✗ login" in out and "fix:" in out and "check(s) failed" in out


def test_cli_configuration_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert "configuration file not found" in err and "Traceback" not in err
    path = tmp_path / "qlik-sso.toml"
    path.write_text('[qlik]\nurl = "http://127.0.0.1:1"\nprefixe = "sso"\n')
    assert main(["check", "--config", str(path)]) == 2
    assert f"{path}:3: qlik.prefixe: unknown key; did you mean 'prefix'?" in capsys.readouterr().err


@pytest.mark.parametrize(
    "engine", ["auto", pytest.param("reqwest", marks=pytest.mark.fast), "aiohttp"]
)
async def test_qlik_generated_certificate_and_the_http_engine(tmp_path: Path, engine: str) -> None:
    """Qlik's own certificates name the host in the CN only: the check says which engine copes."""
    generate_qlik_certificates(tmp_path)
    async with QlikSimulator(vp(), https=True, cert_dir=tmp_path) as sim:
        env = sim_env(sim, qps=False, qlik_verify=str(tmp_path / "root.pem"))
        env["QLIK_SSO_QLIK_URL"] = f"https://localhost:{sim.proxy_port}"
        env["QLIK_SSO_QLIK_HTTP_ENGINE"] = engine
        report = await check(env)
    status, detail, fix = step(report, "proxy.http_engine")
    assert status == ("fail" if engine == "reqwest" else "pass")
    if engine == "reqwest":
        assert failed_ids(report) == ["proxy.http_engine"]
        assert "no subjectAltName" in detail
        assert "http_engine='aiohttp'" in fix
    else:
        assert report.ok, [s.render() for s in report.steps]
        assert detail.startswith("aiohttp")
        # Without pyreqwest "auto" is aiohttp from the start: nothing to explain.
        assert ("no subjectAltName" in detail) == (engine == "auto" and reqwest_installed())
