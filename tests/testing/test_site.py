"""Site-level behaviour of the simulator, as `docs/qlik-setups.md` records Qlik's: which virtual
proxy answers a path, the default VP's Windows authentication, access passes per user and per
directory (proxy page, engine notice, QPS API), VPs without engine nodes, live QMC edits, and the
site as a TOML file."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import httpx2 as httpx
import pytest
from websockets.asyncio.client import connect

from qlik_sso_middleware.testing import AccessPasses, QlikSimulator, VirtualProxy
from qlik_sso_middleware.testing.proxy_app import NO_ACCESS_PASS_TEXT
from qlik_sso_middleware.testing.sim_config import load_simulator_config
from tests.testing.conftest import APP, api_client, recv_json, ws_url, xrf

WINDOWS_BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0"
MAC_BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1"
SITE = [VirtualProxy(prefix=""), VirtualProxy(prefix="a_", header_name="CMI_Header")]


async def test_a_prefix_no_vp_has_gets_400_even_with_a_default_vp() -> None:
    async with QlikSimulator(SITE, api=False) as sim, httpx.AsyncClient() as client:
        typo = await client.get(f"{sim.proxy_url}/b_/qps/user")
        assert typo.status_code == 400
        assert "The http request header is incorrect" in typo.text
        # The default VP's own paths (reserved words) still reach it.
        hub = await client.get(f"{sim.proxy_url}/hub/")
        assert hub.status_code == 302
        assert "/internal_forms_authentication/" in hub.headers["location"]
        user = await client.get(f"{sim.proxy_url}/a_/qps/user", headers={"CMI_Header": "CMI\\Me"})
        assert user.json()["userId"] == "Me"


async def test_unknown_prefix_served_by_the_default_vp_when_configured() -> None:
    async with (
        QlikSimulator(SITE, api=False, unknown_prefix="default_vp") as sim,
        httpx.AsyncClient() as client,
    ):
        typo = await client.get(f"{sim.proxy_url}/b_/qps/user")
        body = typo.json()
        assert body["session"] == "inactive"
        # The default VP's login URI names no prefix: evidence that no VP 'b_' answered.
        assert body["loginUri"].startswith(f"{sim.proxy_url}/internal_forms_authentication/")


async def test_a_vp_not_linked_answers_like_no_vp_and_a_qmc_edit_links_it() -> None:
    vps = [VirtualProxy(prefix=""), VirtualProxy(prefix="hdr", linked=False)]
    async with QlikSimulator(vps, api=False) as sim, httpx.AsyncClient() as client:
        url = f"{sim.proxy_url}/hdr/qps/user"
        assert (await client.get(url, headers={"hdr-usr": "ACME\\a"})).status_code == 400
        sim.configure_virtual_proxy("hdr", linked=True)
        assert (await client.get(url, headers={"hdr-usr": "ACME\\a"})).json()["userId"] == "a"
        sim.configure_virtual_proxy("new", header_name="X-New")
        answer = await client.get(f"{sim.proxy_url}/new/qps/user", headers={"X-New": "ACME\\b"})
        assert answer.json()["userId"] == "b"


async def test_windows_browsers_get_the_windows_authentication_challenge() -> None:
    async with QlikSimulator(SITE, api=False) as sim, httpx.AsyncClient() as client:
        first = await client.get(f"{sim.proxy_url}/hub/", headers={"User-Agent": WINDOWS_BROWSER})
        assert first.status_code == 302
        location = first.headers["location"]
        assert location.startswith(f"{sim.proxy_url}/internal_windows_authentication/?targetId=")
        challenge = await client.get(location, headers={"User-Agent": WINDOWS_BROWSER})
        assert challenge.status_code == 401
        assert challenge.headers.get_list("www-authenticate") == ["Negotiate", "NTLM"]
        other = await client.get(f"{sim.proxy_url}/hub/", headers={"User-Agent": MAC_BROWSER})
        assert "/internal_forms_authentication/" in other.headers["location"]
        # A header VP without its header sends Windows browsers the same way, under its prefix.
        vp = await client.get(f"{sim.proxy_url}/a_/hub/", headers={"User-Agent": WINDOWS_BROWSER})
        assert "/a_/internal_windows_authentication/" in vp.headers["location"]


async def test_the_windows_authentication_listener_challenges_everything() -> None:
    async with QlikSimulator(SITE, api=False, windows_auth_port=True) as sim:
        assert sim.certificates is not None and sim.windows_auth_url is not None
        async with httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(sim.certificates.root))
        ) as client:
            answer = await client.get(f"{sim.windows_auth_url}/qps/a_/session/x")
        assert answer.status_code == 401
        assert answer.headers.get_list("www-authenticate") == ["Negotiate", "NTLM"]


@pytest.mark.parametrize(
    "access",
    [
        AccessPasses(users={"CMI\\Me": "none"}),
        AccessPasses(directories={"cmi": "not_synced"}),
        AccessPasses(default="none", users={"ACME\\a": "allocated"}),
    ],
)
async def test_a_user_without_an_access_pass_on_the_proxy_and_the_engine(
    access: AccessPasses,
) -> None:
    vps = [VirtualProxy(prefix="a_", header_name="CMI_Header", extended_ws_csrf=False)]
    async with QlikSimulator(vps, api=False, access=access) as sim:
        async with httpx.AsyncClient() as client:
            page = await client.get(f"{sim.proxy_url}/a_/hub/", headers={"CMI_Header": "CMI\\Me"})
            other = await client.get(f"{sim.proxy_url}/a_/hub/", headers={"CMI_Header": "ACME\\a"})
        assert page.status_code == 403
        assert NO_ACCESS_PASS_TEXT in page.text
        assert "set-cookie" not in page.headers
        assert other.status_code == 200  # another user of the same site is not affected
        url = ws_url(sim, f"/a_/app/{APP}")
        async with connect(url, additional_headers={"CMI_Header": "CMI\\Me"}) as ws:
            notice = await recv_json(ws)
        assert notice["method"] == "OnLicenseAccessDenied"
        assert notice["params"]["severity"] == "fatal"
        assert sim.live_sessions("CMI\\Me") == []
        # The proxy's own API logs the user in; the engine greets, then refuses.
        async with httpx.AsyncClient() as client:
            user = await client.get(
                f"{sim.proxy_url}/a_/qps/user", headers={"CMI_Header": "CMI\\Me"}
            )
        cookie = f"{sim.cookie_name('a_')}={user.cookies[sim.cookie_name('a_')]}"
        async with connect(url, additional_headers={"Cookie": cookie}) as ws:
            greeting = await recv_json(ws)
            notice = await recv_json(ws)
        assert greeting["params"] == {
            "userId": "Me",
            "userDirectory": "CMI",
            "mustAuthenticate": False,
        }
        assert notice["method"] == "OnLicenseAccessDenied"
        sim.access = sim.access.allocate("cmi\\me")  # the QMC allocates access: now it works
        async with httpx.AsyncClient() as client:
            page = await client.get(f"{sim.proxy_url}/a_/hub/", headers={"CMI_Header": "CMI\\Me"})
        assert page.status_code == 200


async def test_the_qps_api_creates_the_session_and_using_qlik_checks_the_pass() -> None:
    # Qlik checks the licence when the session is used, not when the QPS API creates it.
    access = AccessPasses(users={"CMI\\Me": "none"})
    async with QlikSimulator([VirtualProxy(prefix="a_")], access=access) as sim:
        async with api_client(sim) as api:
            path, headers = xrf("/qps/a_/session")
            body = {"UserDirectory": "CMI", "UserId": "Me", "SessionId": "sid-1"}
            created = await api.post(path, json=body, headers=headers)
        assert created.status_code == 201
        cookie = {"Cookie": f"{sim.cookie_name('a_')}=sid-1"}
        async with httpx.AsyncClient() as client:
            user = await client.get(f"{sim.proxy_url}/a_/qps/user", headers=cookie)
            assert user.json()["userId"] == "Me"  # the proxy's own API needs no pass
            page = await client.get(f"{sim.proxy_url}/a_/hub/", headers=cookie)
        assert page.status_code == 403
        assert NO_ACCESS_PASS_TEXT in page.text
        sim.access = sim.access.allocate("CMI\\Me")  # the session stays: allocated, it works
        async with httpx.AsyncClient() as client:
            page = await client.get(f"{sim.proxy_url}/a_/hub/", headers=cookie)
        assert page.status_code == 200


async def test_a_vp_without_load_balancing_nodes_has_no_engine() -> None:
    vp = VirtualProxy(load_balancing_nodes=(), extended_ws_csrf=False)
    async with QlikSimulator([vp], api=False) as sim:
        async with connect(
            ws_url(sim, "/sso/app/engineData"), additional_headers={"hdr-usr": "A\\b"}
        ) as ws:
            greeting = await recv_json(ws)
            notice = await recv_json(ws)
    assert greeting["params"]["mustAuthenticate"] is False
    assert notice["method"] == "OnNoEngineAvailable"


SITE_TOML = """\
https = false
unknown_prefix = "default_vp"
[[virtual_proxy]]
prefix = ""
[[virtual_proxy]]
prefix = "A_"
header_name = "CMI_Header"
dynamic_pattern = '$ud\\\\$id'
cookie_name = "X-Qlik-Session-CMI"
[access]
users = { 'CMI\\Me' = "none" }
"""


def test_the_site_as_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE_TOML, encoding="utf-8")
    options = load_simulator_config(path)
    assert options["unknown_prefix"] == "default_vp"
    vp = options["virtual_proxies"][1]
    assert (vp.prefix, vp.parse_identity("CMI\\Me")) == ("a_", ("CMI", "Me"))
    assert options["access"].state("CMI", "Me") == "none"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('header_name = "CMI_Header"', "header_name = 7"),
            ":7: virtual_proxy[2].header_name: must be a string",
        ),
        (("cookie_name", "cookie_nam"), ":9: virtual_proxy[2].cookie_nam: unknown key"),
        (('prefix = "A_"', 'prefix = "a/b"'), ":6: virtual_proxy[2].prefix: must be lowercase"),
        (('= "none"', '= "some"'), ":11: access.users: 'CMI\\\\Me': 'some' is not"),
        (
            ('unknown_prefix = "default_vp"', 'unknown_prefix = "guess"'),
            ":2: unknown_prefix: must be",
        ),
        (("https = false", "htps = false"), ":1: htps: unknown key"),
    ],
)
def test_simulate_config_errors_name_file_line_and_key(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE_TOML.replace(*change), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "qlik_sso_middleware.testing.cli", "--config", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{path}{expected}" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


async def test_the_read_only_qrs_lists_virtual_proxies_to_the_sites_certificate() -> None:
    site = [VirtualProxy(prefix=""), VirtualProxy(prefix="tmo", session_timeout=600)]
    async with QlikSimulator(site, api=False, qrs=True) as sim:
        assert sim.certificates is not None and sim.qrs_url is not None
        context = ssl.create_default_context(cafile=str(sim.certificates.root))
        context.load_cert_chain(str(sim.certificates.client), str(sim.certificates.client_key))
        admin = {"X-Qlik-User": "UserDirectory=INTERNAL; UserId=sa_repository"}
        async with httpx.AsyncClient(base_url=sim.qrs_url, verify=context) as qrs:
            path, headers = xrf("/qrs/virtualproxyconfig/full?filter=prefix%20eq%20'tmo'")
            listed = await qrs.get(path, headers=headers | admin)
            no_user = await qrs.get(path, headers=headers)
            no_key = await qrs.get("/qrs/virtualproxyconfig/full", headers=admin)
            sim.configure_virtual_proxy("tmo", session_timeout=1800)  # a QMC edit shows at once
            again = await qrs.get(path, headers=headers | admin)
    assert [vp["prefix"] for vp in listed.json()] == ["tmo"]
    assert listed.json()[0]["sessionInactivityTimeout"] == 10
    assert listed.json()[0]["headerAuthenticationDynamicUserDirectory"] == "$ud\\\\$id"
    assert again.json()[0]["sessionInactivityTimeout"] == 30
    assert no_user.status_code == 403
    assert no_key.status_code == 403 and "XSRF prevention check failed" in no_key.text


@pytest.mark.parametrize(
    "query",
    [
        "",  # missing
        "X-Qlik-xrfkey=abcdefghij123456",  # the header's name used as the parameter
        "xrfkey=abcdefghij12345",  # 15 characters
    ],
)
async def test_the_xrfkey_mistakes_community_threads_report(query: str) -> None:
    async with QlikSimulator([VirtualProxy()]) as sim, api_client(sim) as api:
        answer = await api.get(
            f"/qps/sso/session/x?{query}", headers={"X-Qlik-Xrfkey": "abcdefghij123456"}
        )
    assert answer.status_code == 403
    assert answer.text == "XSRF prevention check failed. Possible XSRF discovered."


async def test_a_gateway_that_drops_xrfkey_halves_makes_qps_refuse() -> None:
    async with QlikSimulator([VirtualProxy()]) as sim, api_client(sim) as api:
        path, headers = xrf("/qps/sso/session/x")
        assert (await api.get(path, headers=headers)).status_code == 404  # intact: QPS answers
        sim.faults.api_drop_headers = {"X-Qlik-Xrfkey"}
        assert (await api.get(path, headers=headers)).status_code == 403
        sim.faults.reset()
        sim.faults.api_drop_query = {"xrfkey"}
        assert (await api.get(path, headers=headers)).status_code == 403


def test_simulate_config_sets_access_passes_for_real(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE_TOML, encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qlik_sso_middleware.cli",
            "simulate",
            "--config",
            str(path),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(60, process.kill)  # bounded: no first line within 60 s ends it
    timer.start()
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        timer.cancel()
        with httpx.Client(base_url=info["proxy_url"], timeout=30) as client:
            denied = client.get("/a_/hub/", headers={"CMI_Header": "CMI\\Me"})
            allowed = client.get("/a_/hub/", headers={"CMI_Header": "CMI\\You"})
        assert denied.status_code == 403 and NO_ACCESS_PASS_TEXT in denied.text
        assert allowed.status_code == 200
    finally:
        timer.cancel()
        process.terminate()
        process.wait(timeout=30)
