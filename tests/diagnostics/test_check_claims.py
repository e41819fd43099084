"""What `run_checks` may claim, against the simulator set up like the community reports of issue 15:
each defect found by trying it as a new user would, pinned by a test that failed before the fix.

- a ✓ for the engine when the engine refused (app unknown, no access pass after its greeting);
- a ✓ for a virtual proxy that does not exist (a QPS that serves unknown prefixes from the default
  VP), and advice to edit that missing VP's authentication;
- the QMC's pattern notation rejected on one side or the other;
- a header name's twin (`CMI-Header` for `CMI_Header`) never tried;
- a prefix typed with capitals refused;
- "no access pass" and the 5-session cap mixed up in one fix;
- "leave it unset" advised for the cookie name that was unset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import httpx2 as httpx
from starlette.types import Receive, Scope, Send

from qlik_sso_middleware.config import load_config
from qlik_sso_middleware.diagnostics import Report, Step, run_checks
from qlik_sso_middleware.diagnostics.context import excerpt, prefix_in_uri, redact
from qlik_sso_middleware.testing import AccessPasses, QlikSimulator, VirtualProxy
from tests.servers import serve

USER = "CMI\\Me"


def env_for(sim: QlikSimulator, **extra: str) -> dict[str, str]:
    env = {"QLIK_SSO_QLIK_URL": sim.proxy_url, "QLIK_SSO_CHECK_TEST_USER": USER}
    return env | {f"QLIK_SSO_{k.upper()}": v for k, v in extra.items()}


async def check(env: dict[str, str]) -> Report:
    return await run_checks(load_config(None, env))


def only(report: Report, status: str = "fail") -> list[Step]:
    return [s for s in report.steps if s.status == status]


def step(report: Report, id: str) -> Step:
    found = [s for s in report.steps if s.id == id]
    assert len(found) == 1, [s.render() for s in report.steps]
    return found[0]


def vps(**options: object) -> Sequence[VirtualProxy]:
    return [
        VirtualProxy(prefix=""),
        VirtualProxy(prefix="a_", header_name="CMI_Header", **options),  # type: ignore[arg-type]
    ]


def header_env(sim: QlikSimulator, **extra: str) -> dict[str, str]:
    return env_for(sim, **({"qlik_prefix": "a_", "auth_header_name": "CMI_Header"} | extra))


async def test_unknown_app_fails_the_engine_step_and_names_the_app_by_its_id() -> None:
    async with QlikSimulator(vps(), api=False) as sim:
        app = next(iter(sim.apps.values()))
        report = await check(header_env(sim, check_app_id=app.name))
        websocket = step(report, "websocket")
        assert websocket.status == "fail" and not report.ok
        assert "OnNoEngineAvailable" in websocket.detail
        assert websocket.action == {"config": {"check.app_id": app.id}}
        report = await check(header_env(sim, check_app_id=app.id))
        assert report.ok, [s.render() for s in report.steps]
        assert "engine answered" in step(report, "websocket").detail


async def test_access_denied_after_the_engine_greeting_fails_the_engine_step() -> None:
    access = AccessPasses(users={USER: "none"})
    async with QlikSimulator(vps(), api=False, access=access) as sim:
        report = await check(header_env(sim))
    assert [s.id for s in only(report)] == ["websocket"]
    websocket = step(report, "websocket")
    assert "OnLicenseAccessDenied" in websocket.detail
    assert websocket.action == {"access_pass": USER}
    assert "5 parallel" not in (websocket.fix or "")  # not the session cap's fix


async def test_too_many_sessions_is_not_called_a_missing_access_pass() -> None:
    async with QlikSimulator(vps(max_parallel_sessions=1), api=False) as sim:
        async with httpx.AsyncClient() as client:
            await client.get(f"{sim.proxy_url}/a_/qps/user", headers={"CMI_Header": USER})
        report = await check(header_env(sim))
    login = step(report, "login")
    assert login.status == "fail"
    assert "5 parallel sessions per user" in (login.fix or "")
    assert "access pass" not in (login.fix or "")
    assert login.action == {"end_sessions": USER}


async def test_a_typo_prefix_answered_by_the_default_vp_is_not_a_virtual_proxy() -> None:
    async with QlikSimulator(vps(), api=False, unknown_prefix="default_vp") as sim:
        report = await check(header_env(sim, qlik_prefix="b_"))
    vp = step(report, "vp.exists")
    assert vp.status == "fail"
    assert "answered by the default virtual proxy" in vp.detail
    assert all(s.status != "pass" or "virtual proxy" not in s.title for s in report.steps)
    assert "Authentication" not in (vp.fix or "")  # no advice to edit a VP that does not exist
    assert vp.action is not None and vp.action["virtual_proxy"]["prefix"] == "b_"


async def test_a_missing_prefix_with_an_existing_twin_is_named() -> None:
    async with QlikSimulator(vps(), api=False) as sim:
        report = await check(header_env(sim, qlik_prefix="a-"))
    vp = step(report, "vp.exists")
    assert vp.status == "fail"
    assert "the virtual proxy 'a_' exists" in vp.detail
    assert vp.action == {"config": {"qlik.prefix": "a_"}}


async def test_qmc_pattern_on_both_sides_and_capital_prefix_pass() -> None:
    site = [VirtualProxy(prefix="A_", header_name="CMI_Header", dynamic_pattern="$ud\\\\$id")]
    async with QlikSimulator(site, api=False) as sim:
        env = env_for(
            sim, qlik_prefix="A_", auth_header_name="CMI_Header", auth_pattern="$ud\\\\$id"
        )
        report = await check(env)
    assert report.ok, [s.render() for s in report.steps]
    assert "'A_' is used as 'a_'" in step(report, "vp.exists").title
    assert step(report, "qps.user").detail == USER


async def test_the_header_names_twin_is_tried_first_and_named() -> None:
    async with QlikSimulator(vps(), api=False) as sim:
        report = await check(header_env(sim, auth_header_name="CMI-Header"))
    login = step(report, "login")
    assert login.status == "fail"
    assert "accepts the header 'CMI_Header', not 'CMI-Header'" in (login.fix or "")
    assert "nginx" in (login.fix or "")
    assert login.action == {"config": {"auth.header_name": "CMI_Header"}}


async def test_a_default_cookie_name_is_not_advised_to_stay_unset() -> None:
    async with QlikSimulator(vps(cookie_name="X-Qlik-Session-CMI"), api=False) as sim:
        report = await check(header_env(sim))
    login = step(report, "login")
    assert "set qlik.cookie_name = 'X-Qlik-Session-CMI'" in (login.fix or "")
    assert "leave it unset" not in (login.fix or "")
    assert login.action == {"config": {"qlik.cookie_name": "X-Qlik-Session-CMI"}}


async def test_an_answer_check_cannot_read_fails_with_a_safe_excerpt() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan
        body = b"<html><body><p>Gateway says no</p><p>/?qlikTicket=T0PSECRET</p></body></html>"
        headers = [
            (b"content-type", b"text/html"),
            (b"set-cookie", b"X-Qlik-Session-a_=C00KIEVALUE; Path=/"),
        ]
        await send({"type": "http.response.start", "status": 502, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async with serve(app, lifespan="off") as url:
        report = await check({"QLIK_SSO_QLIK_URL": url, "QLIK_SSO_CHECK_TEST_USER": USER})
    vp = step(report, "vp.exists")
    assert vp.status == "fail"
    assert '502 text/html: "Gateway says no /?qlikTicket=…"' in vp.detail
    rendered = "\n".join(s.render() for s in report.steps)
    assert "C00KIE" not in rendered and "T0PSECRET" not in rendered


def test_prefix_evidence_and_redaction() -> None:
    assert prefix_in_uri("http://h/a_/internal_forms_authentication/?targetId=1") == "a_"
    assert prefix_in_uri("http://h/internal_windows_authentication/?targetId=1") == ""
    assert prefix_in_uri("https://h/qps/user") == ""
    assert prefix_in_uri("https://h/x/y/qps/user") == "x/y"
    assert (
        prefix_in_uri("https://sso.example/login?targetId=1&proxyRestUri=https://h:4243/qps/a_/")
        == "a_"
    )
    assert prefix_in_uri("https://portal.example/login") is None
    assert redact("a?xrfkey=abc&qlikTicket=def; X-Qlik-Session-a_=ghi") == (
        "a?xrfkey=…&qlikTicket=…; X-Qlik-Session-a_=…"
    )
    page = httpx.Response(403, headers={"content-type": "text/plain"}, content=b"")
    assert excerpt(page) == "403 text/plain, empty body"


async def test_a_login_answer_check_cannot_read_is_quoted_without_secrets() -> None:
    async def qlik_ish(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        if b"hdr-usr" not in headers:  # Qlik's logged-out answer, naming the VP
            body = json.dumps(
                {
                    "session": "inactive",
                    "loginUri": "http://h/sso/internal_forms_authentication/?targetId=1",
                }
            ).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        else:
            body = b"<html><body><h1>Proxy error</h1><p>token=T0KENVALUE</p></body></html>"
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"text/html"),
                (b"set-cookie", b"X-Qlik-Session-sso=C00KIEVALUE; Path=/"),
            ]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async with serve(qlik_ish, lifespan="off") as url:
        report = await check({"QLIK_SSO_QLIK_URL": url, "QLIK_SSO_CHECK_TEST_USER": USER})
    assert step(report, "vp.exists").status == "pass"
    login = step(report, "login")
    assert login.status == "fail"
    assert "Qlik answered 500" in login.detail
    assert '500 text/html: "Proxy error token=…"' in (login.fix or "")
    rendered = "\n".join(s.render() for s in report.steps) + json.dumps(report.to_json())
    assert "C00KIE" not in rendered and "T0KEN" not in rendered
