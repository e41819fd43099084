"""The middleware end to end: real uvicorn, real httpx, the simulator as Qlik (issue 3)."""

from __future__ import annotations

import asyncio

import httpx2 as httpx
import pytest

from qlik_sso_middleware.testing import QlikSimulator

from .apps import build_app
from .servers import serve


async def test_requests_outside_the_mount_reach_the_app(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/")
    assert response.text == "app home"
    assert simulator.requests == []


async def test_logged_in_user_reaches_qlik_as_themselves(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        response = await client.get("/sso/qps/user")
    assert response.status_code == 200
    body = response.json()
    assert (body["userDirectory"], body["userId"]) == ("ACME", "alice")
    # The browser never sees Qlik's cookie.
    assert "set-cookie" not in response.headers
    assert simulator.logins("ACME\\alice") == 1
    # Every forwarded request carried the identity header as the middleware set it.
    forwarded = [r for r in simulator.requests if r.port == "proxy"]
    assert forwarded and all(r.header("hdr-usr") == ["ACME\\alice"] for r in forwarded)


async def test_no_user_gets_401_json_and_nothing_reaches_qlik(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/sso/hub/", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["error"] == "Not logged in"
    assert simulator.requests == []


async def test_no_user_page_load_redirects_to_login_url(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator, login_url="/login")
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get(
            "/sso/single/?appid=x", headers={"accept": "text/html", "sec-fetch-mode": "navigate"}
        )
    assert response.status_code == 302
    assert response.headers["location"] == "/login?next=/sso/single/%3Fappid%3Dx"


async def test_concurrent_first_requests_cause_exactly_one_login(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    limits = httpx.Limits(max_connections=200)
    async with (
        serve(app) as url,
        httpx.AsyncClient(
            base_url=url, cookies={"app_user": "carol"}, limits=limits, timeout=60
        ) as client,
    ):
        responses = await asyncio.gather(*(client.get("/sso/qps/user") for _ in range(200)))
    assert [r.status_code for r in responses] == [200] * 200
    assert simulator.logins("ACME\\carol") == 1
    assert len(simulator.live_sessions("ACME\\carol")) == 1


async def test_two_users_interleaved_never_share_a_session(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    async with serve(app) as url:
        clients = {
            user: httpx.AsyncClient(base_url=url, cookies={"app_user": user}, timeout=60)
            for user in ("alice", "bob")
        }
        try:

            async def hit(user: str) -> None:
                response = await clients[user].get("/sso/content/_sim/echo")
                assert response.status_code == 200
                assert response.json()["user"] == f"ACME\\{user}"

            await asyncio.gather(*(hit(u) for _ in range(500) for u in ("alice", "bob")))
        finally:
            for client in clients.values():
                await client.aclose()
    sessions = {u: simulator.live_sessions(f"ACME\\{u}") for u in ("alice", "bob")}
    assert all(len(s) == 1 for s in sessions.values())
    ids = {u: s[0].id for u, s in sessions.items()}
    echo = [r for r in simulator.requests if r.path.endswith("/_sim/echo")]
    assert len(echo) == 1000
    for record in echo:
        # Each upstream request carried its own user's session, never the other's.
        assert record.user in ("ACME\\alice", "ACME\\bob")
        user = record.user.split("\\")[1]
        assert record.session_id == ids[user]
        assert record.header("hdr-usr") == [record.user]


@pytest.mark.parametrize(
    "spoof",
    ["hdr-usr", "HDR-USR", "Hdr-Usr", "hdr_usr", "HDR_usr", "x-qlik-user", "X-Qlik-Security"],
)
async def test_spoofed_identity_headers_never_reach_qlik(
    simulator: QlikSimulator, spoof: str
) -> None:
    app, _ = build_app(simulator)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        response = await client.get(
            "/sso/content/_sim/echo", headers=[(spoof, "ACME\\admin"), (spoof, "ACME\\root")]
        )
    assert response.status_code == 200
    assert response.json()["user"] == "ACME\\alice"
    for record in simulator.requests:
        values = [
            v
            for k, v in record.headers
            if k.lower().replace("_", "-") == spoof.lower().replace("_", "-")
        ]
        assert "ACME\\admin" not in values and "ACME\\root" not in values


async def test_browser_qlik_cookies_and_app_cookies_never_reach_qlik(
    simulator: QlikSimulator,
) -> None:
    app, _ = build_app(simulator)
    # Another user's (valid) Qlik session cookie, smuggled by the browser.
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "bob"}) as bob,
    ):
        await bob.get("/sso/qps/user")
    bobs = simulator.live_sessions("ACME\\bob")[0].id
    smuggled = {
        "app_user": "alice",
        "X-Qlik-Session-sso-HTTP": bobs,
        "x-qlik-session-sso-http": bobs,
        "csrftoken": "app-secret",
    }
    async with serve(app) as url, httpx.AsyncClient(base_url=url, cookies=smuggled) as client:
        response = await client.get("/sso/content/_sim/echo")
    assert response.json()["user"] == "ACME\\alice"
    last = simulator.requests[-1]
    assert set(last.cookies) == {"X-Qlik-Session-sso-HTTP"}
    assert last.cookies["X-Qlik-Session-sso-HTTP"] != bobs


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/sso/qrs/about", 403),
        ("/sso/QRS/about", 403),
        ("/sso/Qmc/", 403),
        ("/sso/../admin", 400),
        ("/sso/%2e%2e/admin", 400),
        ("/sso/hub%2f..%2fqrs", 400),
        ("/sso/%252e%252e/x", 400),
        ("/sso//qrs/about", 400),
        ("/sso/hub\\..\\qrs", 400),
        ("/sso/hub;x=1/", 400),
    ],
)
async def test_path_tricks_and_admin_surfaces_are_refused(
    simulator: QlikSimulator, path: str, status: int
) -> None:
    app, _ = build_app(simulator)
    async with serve(app) as url:
        # Send the path byte for byte (httpx would normalise it).
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: app_user=alice\r\n"
            "Accept: application/json\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await reader.read()
        writer.close()
    assert raw.split(b" ", 2)[1] == str(status).encode()
    assert simulator.requests == []


async def test_unsafe_cross_site_requests_are_refused(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        evil = await client.post(
            "/sso/content/_sim/echo", headers={"origin": "https://evil.example"}
        )
        fetch_site = await client.post(
            "/sso/content/_sim/echo", headers={"sec-fetch-site": "cross-site"}
        )
        same = await client.post("/sso/content/_sim/echo", headers={"origin": url})
    assert evil.status_code == 403
    assert fetch_site.status_code == 403
    assert same.status_code == 200
    assert len([r for r in simulator.requests if r.method == "POST"]) == 1


async def test_logout_ends_the_qlik_session_and_clears_the_cache(simulator: QlikSimulator) -> None:
    app, _sso = build_app(simulator)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        await client.get("/sso/qps/user")
        session_id = simulator.live_sessions("ACME\\alice")[0].id
        response = await client.post("/logout", headers={"origin": url})
        assert response.json() == {"dropped": 1}
        assert simulator.live_sessions("ACME\\alice") == []
        assert simulator.session(session_id) is None or simulator.session(session_id).ended
        # Logging out twice (no session) is safe.
        assert (await client.post("/logout", headers={"origin": url})).json() == {"dropped": 0}
        # The next request logs in again with a fresh session.
        await client.get("/sso/qps/user")
    assert simulator.logins("ACME\\alice") == 2


async def test_session_qlik_forgot_is_renewed_without_the_user_noticing(
    simulator: QlikSimulator,
) -> None:
    app, _ = build_app(simulator)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        assert (await client.get("/sso/qps/user")).status_code == 200
        simulator.restart()  # Qlik forgets every session
        response = await client.get("/sso/content/_sim/echo")
        assert response.status_code == 200
        assert response.json()["user"] == "ACME\\alice"
        again = await client.get("/sso/content/_sim/echo")
    assert again.status_code == 200
    assert simulator.logins("ACME\\alice") == 2
    assert len(simulator.live_sessions("ACME\\alice")) == 1
    # The renewed session is the one now in use.
    assert simulator.requests[-1].session_id == simulator.live_sessions("ACME\\alice")[0].id


async def test_qlik_down_gives_502_json_without_internals() -> None:
    async with QlikSimulator(api=False) as sim:
        app, _ = build_app(sim)
    # The simulator is stopped now: nothing listens on its port.
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        response = await client.get("/sso/hub/", headers={"accept": "application/json"})
    assert response.status_code == 502
    assert response.json() == {"error": "Qlik Sense is not available", "status": 502}
