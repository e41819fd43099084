"""Recovery: Qlik re-issuing sessions, expiring them, and redirects that must point at the app."""

from __future__ import annotations

import json

import httpx2 as httpx
from websockets.asyncio.client import connect

from qlik_sso_middleware import QlikIdentity
from qlik_sso_middleware.sessions import session_key
from qlik_sso_middleware.testing import DEMO_APPS, ManualClock, QlikSimulator, VirtualProxy

from ..apps import build_app
from ..servers import serve


async def test_expired_session_is_replaced_by_the_one_qlik_issues() -> None:
    clock = ManualClock()
    async with QlikSimulator([VirtualProxy(session_timeout=1800)], clock=clock) as sim:
        app, _ = build_app(sim)
        async with (
            serve(app) as url,
            httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
        ):
            await client.get("/sso/qps/user")
            first = sim.live_sessions("ACME\\alice")[0].id
            clock.advance(
                1801
            )  # Qlik's inactivity timeout passes; our cache still holds the cookie
            response = await client.get("/sso/content/_sim/echo")
            assert response.json()["user"] == "ACME\\alice"
            second = sim.live_sessions("ACME\\alice")[0].id
            assert second != first
            # The new session Qlik issued (by header) is the one the middleware now presents.
            await client.get("/sso/content/_sim/echo")
            assert sim.requests[-1].session_id == second
            assert sim.requests[-1].cookies["X-Qlik-Session-sso-HTTP"] == second
        assert sim.logins("ACME\\alice") == 2


async def test_session_closed_notice_drops_the_cached_session(simulator: QlikSimulator) -> None:
    app, sso = build_app(simulator)
    async with serve(app) as url:
        async with connect(
            "ws" + url[4:] + f"/sso/app/{DEMO_APPS[0].id}",
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "app_user=alice"},
        ) as ws:
            await ws.recv()
            await ws.recv()
            # Qlik ends the session (e.g. an admin's DELETE on the QPS API).
            session = simulator.live_sessions("ACME\\alice")[0]
            async with httpx.AsyncClient() as qlik:
                await qlik.delete(
                    simulator.proxy_url + "/sso/qps/user",
                    headers={"cookie": f"X-Qlik-Session-sso-HTTP={session.id}"},
                )
            notice = json.loads(await ws.recv())
            assert notice["method"] == "OnSessionClosed"
        key = session_key(sso.upstreams[0], QlikIdentity("ACME", "alice"))
        assert await sso.store.get(key) is None


async def test_redirects_point_at_the_app_when_qlik_sees_another_host_or_prefix() -> None:
    async with QlikSimulator([VirtualProxy(prefix="sso")]) as sim:
        app, _ = build_app(
            sim, target={"host_header": "qlik.internal", "mount_path": "/analytics/"}
        )
        async with (
            serve(app) as url,
            httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
        ):
            response = await client.get("/analytics/content/_sim/redirect?to=/sso/hub/")
    assert response.status_code == 302
    host = url.removeprefix("http://")
    assert response.headers["location"] == f"http://{host}/analytics/hub/"
    assert sim.requests[-1].header("host") == ["qlik.internal"]
    assert sim.requests[-1].path == "/sso/content/_sim/redirect"
