"""The simulated proxy port over real loopback sockets: routing, authentication, cookies, limits."""

from __future__ import annotations

import asyncio
import re
import ssl
import uuid

import httpx2 as httpx
import pytest

from qlik_sso_middleware.testing import ManualClock, QlikSimulator, VirtualProxy

from .conftest import APP, USER, login

COOKIE_RE = re.compile(
    r"X-Qlik-Session-sso-HTTP=([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12});"
    r" Path=/; HttpOnly"
)


async def test_unknown_prefix_without_default_vp_is_400_html(sim: QlikSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        response = await client.get("/nope/hub/", headers={"hdr-usr": USER})
        upper = await client.get("/SSO/hub/", headers={"hdr-usr": USER})  # prefixes are lowercase
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert upper.status_code == 400
    assert sim.requests[-1].prefix is None
    assert sim.logins() == 0


async def test_default_virtual_proxy_takes_unprefixed_paths(clock: ManualClock) -> None:
    vps = [VirtualProxy(prefix=""), VirtualProxy(prefix="sso")]
    async with (
        QlikSimulator(vps, clock=clock, api=False) as sim,
        httpx.AsyncClient(base_url=sim.proxy_url) as client,
    ):
        default = await client.get("/hub/", headers={"hdr-usr": USER})
        prefixed = await client.get("/sso/hub/", headers={"hdr-usr": USER})
    assert default.status_code == 200
    assert "X-Qlik-Session-HTTP=" in default.headers["set-cookie"]
    assert prefixed.headers["set-cookie"].startswith("X-Qlik-Session-sso-HTTP=")
    assert [r.prefix for r in sim.requests] == ["", "sso"]


async def test_no_identity_redirects_to_forms_login_built_from_host(sim: QlikSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        response = await client.get("/sso/hub/", headers={"Host": "qlik.example:8443"})
        assert response.status_code == 302
        location = response.headers["location"]
        match = re.fullmatch(
            r"http://qlik\.example:8443/sso/internal_forms_authentication/\?targetId=(.+)", location
        )
        assert match is not None
        uuid.UUID(match[1])
        page = await client.get(f"/sso/internal_forms_authentication/?targetId={match[1]}")
    assert page.status_code == 200
    assert "<form" in page.text
    assert "set-cookie" not in response.headers
    assert sim.requests[0].status == 302
    assert sim.requests[0].user is None


async def test_external_auth_module_gets_target_id_and_proxy_rest_uri(clock: ManualClock) -> None:
    vp = VirtualProxy(
        prefix="ext", auth="ticket", auth_module_redirect_uri="https://login.test/auth"
    )
    async with (
        QlikSimulator([vp], clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.proxy_url) as client,
    ):
        response = await client.get("/ext/hub/", headers={"Host": "qlik.example"})
    location = response.headers["location"]
    assert response.status_code == 302
    assert re.fullmatch(
        rf"https://login\.test/auth\?targetId=[0-9a-f-]{{36}}"
        rf"&proxyRestUri=https://qlik\.example:{sim.api_port}/qps/ext/",
        location,
    )


async def test_header_login_sets_the_exact_cookie_once(sim: QlikSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        first = await client.get("/sso/hub/", headers={"hdr-usr": USER})
        assert COOKIE_RE.fullmatch(first.headers["set-cookie"])
        second = await client.get("/sso/hub/", headers={"hdr-usr": USER})
        assert "set-cookie" not in second.headers
    assert sim.logins(USER) == 1
    assert sim.logins("acme\\ALICE", prefix="sso") == 1
    [session] = sim.live_sessions(USER)
    assert (session.user_directory, session.user_id) == ("ACME", "alice")
    assert [r.session_id for r in sim.requests] == [session.id, session.id]
    assert [r.user for r in sim.requests] == [USER, USER]


async def test_valid_cookie_wins_over_a_different_header(sim: QlikSimulator) -> None:
    _, cookie, _ = await login(sim)
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        response = await client.get(
            "/sso/qps/user", headers={"Cookie": cookie, "hdr-usr": "ACME\\mallory"}
        )
    assert response.json()["userId"] == "alice"
    assert sim.logins("ACME\\mallory") == 0
    assert sim.requests[-1].user == USER


@pytest.mark.parametrize(
    "headers",
    [
        [("hdr-usr", "alice")],  # no separator
        [("hdr-usr", "ACME\\al\\ice")],  # two separators
        [("hdr-usr", "ACME\\alice"), ("hdr-usr", "ACME\\bob")],  # joined with ", "
        [("hdr-usr", "\\alice")],  # empty directory
        [("hdr-usr", "ACME\\")],
        [(b"hdr-usr", "ACME\\al\u00efce".encode())],  # non-ASCII
        [("other", "ACME\\alice")],
    ],
)
async def test_invalid_identity_header_is_no_identity(
    sim: QlikSimulator, headers: list[tuple[str, str]] | list[tuple[bytes, bytes]]
) -> None:
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        response = await client.get("/sso/hub/", headers=headers)
    assert response.status_code == 302
    assert sim.logins() == 0


async def test_static_user_directory(clock: ManualClock) -> None:
    vp = VirtualProxy(
        prefix="st", auth="header_static", static_user_directory="CORP", header_name="X-User"
    )
    async with (
        QlikSimulator([vp], clock=clock, api=False) as sim,
        httpx.AsyncClient(base_url=sim.proxy_url) as client,
    ):
        ok = await client.get("/st/qps/user", headers={"x-user": "bob"})
        client.cookies.clear()
        bad = await client.get("/st/hub/", headers={"x-user": "CORP\\eve"})
    assert ok.json()["userDirectory"] == "CORP"
    assert ok.json()["userId"] == "bob"
    assert bad.status_code == 302
    assert sim.logins() == 1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "; Path=/; HttpOnly"),
        (
            {"secure_http": True, "samesite_http": "None"},
            "; Path=/; HttpOnly; Secure; SameSite=None",
        ),
        (
            {"samesite_http": "Lax", "cookie_domain": "example.test"},
            "; Path=/; HttpOnly; SameSite=Lax; Domain=example.test",
        ),
        (
            {"cookie_name": "MyCookie", "samesite_http": "Strict"},
            "; Path=/; HttpOnly; SameSite=Strict",
        ),
    ],
)
async def test_set_cookie_attributes_per_vp(
    clock: ManualClock, kwargs: dict[str, object], expected: str
) -> None:
    vp = VirtualProxy(prefix="sso", **kwargs)  # type: ignore[arg-type]
    async with (
        QlikSimulator([vp], clock=clock, api=False) as sim,
        httpx.AsyncClient(base_url=sim.proxy_url) as client,
    ):
        response = await client.get("/sso/hub/", headers={"hdr-usr": USER})
    name = "MyCookie-HTTP" if "cookie_name" in kwargs else "X-Qlik-Session-sso-HTTP"
    [session] = sim.live_sessions()
    assert response.headers["set-cookie"] == f"{name}={session.id}{expected}"
    assert "expires" not in response.headers["set-cookie"].lower()
    assert "max-age" not in response.headers["set-cookie"].lower()


async def test_https_proxy_cookie_has_no_http_suffix_and_is_secure(clock: ManualClock) -> None:
    vp = VirtualProxy(samesite_https="None")
    async with QlikSimulator([vp], https=True, api=False, clock=clock) as sim:
        assert sim.proxy_url.startswith("https://")
        assert sim.certificates is not None
        async with httpx.AsyncClient(
            base_url=sim.proxy_url,
            verify=ssl.create_default_context(cafile=str(sim.certificates.root)),
        ) as client:
            response = await client.get("/sso/hub/", headers={"hdr-usr": USER})
            client.cookies.clear()
            redirect = await client.get("/sso/hub/", headers={"Host": "h.test"})
    [session] = sim.live_sessions()
    assert response.headers["set-cookie"] == (
        f"X-Qlik-Session-sso={session.id}; Path=/; HttpOnly; Secure; SameSite=None"
    )
    assert redirect.headers["location"].startswith(
        "https://h.test/sso/internal_forms_authentication/"
    )


async def test_sliding_inactivity_timeout_by_the_clock(clock: ManualClock) -> None:
    vp = VirtualProxy(session_timeout=100)
    async with QlikSimulator([vp], clock=clock, api=False) as sim:
        _, cookie, _ = await login(sim)
        async with httpx.AsyncClient(base_url=sim.proxy_url, headers={"Cookie": cookie}) as client:
            for _ in range(3):
                clock.advance(60)  # each request slides the timeout
                assert (await client.get("/sso/hub/")).status_code == 200
            clock.advance(100)
            expired = await client.get("/sso/hub/")
            relogin = await client.get("/sso/hub/", headers={"hdr-usr": USER})
    assert expired.status_code == 302
    assert relogin.status_code == 200
    assert relogin.headers["set-cookie"].startswith("X-Qlik-Session-sso-HTTP=")
    assert sim.logins(USER) == 2
    assert [s.end_reason for s in (sim.live_sessions())] == [None]


async def test_sixth_parallel_session_is_refused_until_cooldown(clock: ManualClock) -> None:
    vp = VirtualProxy(cooldown=300)
    async with QlikSimulator([vp], clock=clock, api=False) as sim:
        cookies = [(await login(sim))[1] for _ in range(5)]
        async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
            sixth = await client.get("/sso/hub/", headers={"hdr-usr": USER})
            other_user = await client.get("/sso/hub/", headers={"hdr-usr": "ACME\\bob"})
            client.cookies.clear()
            await client.delete("/sso/qps/user", headers={"Cookie": cookies[0]})
            still = await client.get("/sso/hub/", headers={"hdr-usr": USER})
            clock.advance(301)
            later = await client.get("/sso/hub/", headers={"hdr-usr": USER})
    assert sixth.status_code == 403
    assert "too many sessions active in parallel" in sixth.text
    assert "set-cookie" not in sixth.headers
    assert other_user.status_code == 200
    assert still.status_code == 403
    assert later.status_code == 200
    assert len(sim.live_sessions(USER)) == 5


async def test_qps_user_get_and_delete(sim: QlikSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        inactive = await client.get("/sso/qps/user", headers={"Host": "q.test"})
        _, cookie, _ = await login(sim)
        active = await client.get("/sso/qps/user", headers={"Cookie": cookie, "Host": "q.test"})
        logout = await client.delete("/sso/qps/user", headers={"Cookie": cookie})
        after = await client.get("/sso/qps/user", headers={"Cookie": cookie})
    assert inactive.json()["session"] == "inactive"
    assert inactive.json()["loginUri"].startswith(
        "http://q.test/sso/internal_forms_authentication/"
    )
    assert active.json() == {
        "userDirectory": "ACME",
        "userId": "alice",
        "userName": "alice",
        "logoutUri": "http://q.test/sso/qps/user",
    }
    assert logout.status_code == 200
    assert after.json()["session"] == "inactive"
    assert sim.live_sessions() == []


async def test_csrf_token_is_stable_per_session(sim: QlikSimulator) -> None:
    _, cookie_a, token_a = await login(sim)
    _, _, token_b = await login(sim)
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        again = await client.get("/sso/qps/csrftoken", headers={"Cookie": cookie_a})
        anonymous = await client.get("/sso/qps/csrftoken")
    assert again.headers["qlik-csrf-token"] == token_a
    assert token_a != token_b
    assert anonymous.status_code == 302


async def test_additional_response_headers_on_every_response(clock: ManualClock) -> None:
    vp = VirtualProxy(additional_response_headers=[("X-Frame-Options", "SAMEORIGIN"), ("X-A", "1")])
    async with (
        QlikSimulator([vp], clock=clock, api=False) as sim,
        httpx.AsyncClient(base_url=sim.proxy_url) as client,
    ):
        responses = [
            await client.get("/sso/hub/"),
            await client.get("/sso/hub/", headers={"hdr-usr": USER}),
            await client.get("/sso/nothing-here"),
            await client.get("/sso/qps/user"),
        ]
    for response in responses:
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
        assert response.headers["x-a"] == "1"
    assert [r.status_code for r in responses] == [302, 200, 404, 200]


async def test_anonymous_modes(clock: ManualClock) -> None:
    vps = [
        VirtualProxy(prefix="anon", anonymous="allow"),
        VirtualProxy(prefix="always", anonymous="always"),
    ]
    async with (
        QlikSimulator(vps, clock=clock, api=False) as sim,
        httpx.AsyncClient(base_url=sim.proxy_url) as client,
    ):
        anon = await client.get("/anon/qps/user")
        client.cookies.clear()
        named = await client.get("/anon/qps/user", headers={"hdr-usr": USER})
        always = await client.get("/always/qps/user", headers={"hdr-usr": USER})
    assert anon.json()["userDirectory"] == "NONE"
    assert anon.json()["userId"].startswith("anonymous")
    assert named.json()["userId"] == "alice"
    assert always.json()["userDirectory"] == "NONE"


async def test_qmc_and_qrs_are_present_under_every_vp(sim: QlikSimulator) -> None:
    _, cookie, _ = await login(sim)
    async with httpx.AsyncClient(base_url=sim.proxy_url, headers={"Cookie": cookie}) as client:
        qmc = await client.get("/sso/qmc/")
        no_key = await client.get("/sso/qrs/about")
        key = "0123456789abcdef"
        about = await client.get(f"/sso/qrs/about?Xrfkey={key}", headers={"X-Qlik-Xrfkey": key})
        wrong = await client.get(
            f"/sso/qrs/about?xrfkey={key}", headers={"X-Qlik-Xrfkey": key[::-1]}
        )
    assert qmc.status_code == 200
    assert "QMC" in qmc.text
    assert no_key.status_code == 403
    assert no_key.text == "XSRF prevention check failed. Possible XSRF discovered."
    assert about.status_code == 200
    assert "buildVersion" in about.json()
    assert wrong.status_code == 403


async def test_pages_need_a_session_and_carry_the_client_script(sim: QlikSimulator) -> None:
    _, cookie, _ = await login(sim)
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        anonymous = await client.get(f"/sso/single/?appid={APP}&obj=sales-table")
        client.headers["Cookie"] = cookie
        single = await client.get(f"/sso/single/?appid={APP}&obj=sales-table")
        sense = await client.get(f"/sso/sense/app/{APP}/sheet/sales-sheet-1/state/analysis")
        hub = await client.get("/sso/hub/")
        unknown = await client.get("/sso/single/?appid=nope")
        resource = await client.get("/sso/resources/js/qlik")
        resource_anon = await client.get("/sso/resources/js/qlik", headers={"Cookie": ""})
        extension = await client.get("/sso/extensions/ext1/ext1.js")
        missing = await client.get("/sso/resources/img/logo.png")
    assert anonymous.status_code == 302
    for page in (single, sense):
        assert page.status_code == 200
        assert "qps/csrftoken" in page.text
        assert "qlik-csrf-token" in page.text
        assert 'id="qlik-user"' in page.text
        assert "dataset.state" in page.text
    assert '"objectId": "sales-table"' in single.text
    assert "Sales" in hub.text
    assert "Operations" in hub.text
    assert unknown.status_code == 404
    assert resource.status_code == 200
    assert resource.headers["content-type"].startswith("application/javascript")
    assert resource_anon.status_code == 302
    assert extension.status_code == 200
    assert missing.status_code == 404


async def test_request_log_keeps_what_was_received(sim: QlikSimulator) -> None:
    _, cookie, _ = await login(sim)
    sim.clear_log()
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        await client.get(
            "/sso/content/_sim/echo?a=1&b=%2F",
            headers=[
                ("Cookie", cookie + "; other=x"),
                ("X-Dup", "1"),
                ("X-Dup", "2"),
                ("hdr-usr", "ACME\\bob"),
            ],
        )
        client.cookies.clear()
        await client.get("/sso/some%2Fpath%20x")
    echo, raw = sim.requests
    assert echo.path == "/sso/content/_sim/echo"
    assert echo.query == "a=1&b=%2F"
    assert echo.header("x-dup") == ["1", "2"]
    assert echo.header("HDR-USR") == ["ACME\\bob"]
    assert echo.cookies["other"] == "x"
    assert echo.user == USER  # the cookie won
    assert echo.status == 200
    assert not echo.websocket
    assert echo.port == "proxy"
    assert raw.path == "/sso/some%2Fpath%20x"


async def test_bad_input_never_hangs_or_crashes(sim: QlikSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        huge = await client.get("/sso/hub/", headers={"hdr-usr": "ACME\\" + "a" * 200_000})
        binary = await client.get("/sso/hub/", headers={b"X-Bin": b"\xff\xfe"})
        long_id = await client.get("/sso/hub/", headers={"hdr-usr": "ACME\\" + "a" * 600})
        after = await client.get("/sso/hub/", headers={"hdr-usr": USER})
    assert huge.status_code == 400
    assert "header is incorrect" in huge.text
    assert binary.status_code == 302
    assert long_id.status_code == 302
    assert after.status_code == 200


async def test_header_auth_works_for_any_method(sim: QlikSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        response = await client.post(
            "/sso/content/_sim/echo", headers={"hdr-usr": USER}, content=b"x" * 10
        )
    assert response.status_code == 200
    assert response.json()["body_size"] == 10
    assert sim.logins(USER) == 1


async def test_unknown_or_foreign_cookie_is_no_session(clock: ManualClock) -> None:
    vps = [VirtualProxy(prefix="a"), VirtualProxy(prefix="b", auth="ticket")]
    async with QlikSimulator(vps, clock=clock, api=False) as sim:
        session_a, _, _ = await login(sim, prefix="a")
        async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
            unknown = await client.get(
                "/a/hub/", headers={"Cookie": "X-Qlik-Session-a-HTTP=not-a-session"}
            )
            foreign = await client.get(
                "/b/hub/", headers={"Cookie": f"X-Qlik-Session-b-HTTP={session_a}"}
            )
    assert unknown.status_code == 302
    assert foreign.status_code == 302


async def test_concurrent_requests_with_one_cookie_reuse_one_session(sim: QlikSimulator) -> None:
    _, cookie, _ = await login(sim)
    async with httpx.AsyncClient(base_url=sim.proxy_url, headers={"Cookie": cookie}) as client:
        responses = await asyncio.gather(*(client.get("/sso/qps/user") for _ in range(100)))
    assert {r.json()["userId"] for r in responses} == {"alice"}
    assert sim.logins() == 1
    assert len({r.session_id for r in sim.requests}) == 1
