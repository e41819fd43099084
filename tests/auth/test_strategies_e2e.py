"""Session-API and ticket strategies end to end through the middleware (issue 4): HTTP, WebSocket,
attributes reaching Qlik, and "log this user out everywhere"."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from starlette.requests import HTTPConnection
from websockets.asyncio.client import connect

from qlik_sso_middleware import QlikIdentity
from qlik_sso_middleware.auth._qps import QPSSettings
from qlik_sso_middleware.auth.session_api import SessionApiAuth
from qlik_sso_middleware.auth.ticket import TicketAuth
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..apps import build_app
from ..servers import serve

GROUPS = {"Group": ["Sales", "EMEA"]}


def resolver(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.cookies.get("app_user")
    return QlikIdentity("ACME", user, GROUPS) if user else None


@pytest.fixture(params=["session_api", "ticket"])
async def qlik(request: pytest.FixtureRequest) -> AsyncIterator[tuple[QlikSimulator, str]]:
    async with QlikSimulator([VirtualProxy(prefix="sso", auth="ticket")]) as sim:
        yield sim, request.param


def strategy(sim: QlikSimulator, kind: str, *, pfx: bool = False) -> SessionApiAuth | TicketAuth:
    certs = sim.certificates
    assert sim.api_url is not None
    if pfx:
        settings = QPSSettings(
            sim.api_url,
            certs.root,
            prefix="sso",
            pfx=certs.client_pfx,
            pfx_password=certs.pfx_password,
        )
    else:
        settings = QPSSettings(
            sim.api_url,
            certs.root,
            prefix="sso",
            client_cert=certs.client,
            client_key=certs.client_key,
        )
    return SessionApiAuth(settings) if kind == "session_api" else TicketAuth(settings)


async def test_http_and_websocket_with_attributes(qlik: tuple[QlikSimulator, str]) -> None:
    sim, kind = qlik
    app, _ = build_app(sim, target={"auth": strategy(sim, kind)}, resolver=resolver)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        response = await client.get("/sso/content/_sim/echo")
        assert response.json()["user"] == "ACME\\alice"
        async with connect(
            "ws" + url[4:] + f"/sso/app/{DEMO_APPS[0].id}",
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "app_user=alice"},
        ) as ws:
            auth = json.loads(await ws.recv())
            assert auth["params"]["mustAuthenticate"] is False
            assert auth["params"]["userId"] == "alice"
    [session] = sim.live_sessions("ACME\\alice")
    assert sorted(session.attributes) == [("Group", "EMEA"), ("Group", "Sales")]
    assert sim.logins("ACME\\alice") == 1
    # No identity header and no ticket ever travels with a proxied request.
    for record in sim.requests:
        if record.port == "proxy":
            assert record.header("hdr-usr") == []
            if kind == "ticket" and "qps/user" not in record.path:
                assert "qlikticket" not in record.query.lower()


async def test_pfx_client_certificate_works_too() -> None:
    async with QlikSimulator(
        [VirtualProxy(prefix="sso", auth="ticket")], pfx_password="s3cret"
    ) as sim:
        app, _ = build_app(
            sim, target={"auth": strategy(sim, "session_api", pfx=True)}, resolver=resolver
        )
        async with (
            serve(app) as url,
            httpx.AsyncClient(base_url=url, cookies={"app_user": "bob"}) as client,
        ):
            assert (await client.get("/sso/qps/user")).json()["userId"] == "bob"


async def test_logout_everywhere_ends_sessions_from_two_browsers(
    qlik: tuple[QlikSimulator, str],
) -> None:
    sim, kind = qlik
    # Two app processes (two middlewares with their own memory stores): two Qlik sessions of alice.
    first, sso_one = build_app(sim, target={"auth": strategy(sim, kind)}, resolver=resolver)
    second, _ = build_app(sim, target={"auth": strategy(sim, kind)}, resolver=resolver)
    async with serve(first) as url_one, serve(second) as url_two:
        for url in (url_one, url_two):
            async with httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as browser:
                assert (await browser.get("/sso/qps/user")).status_code == 200
        assert len(sim.live_sessions("ACME\\alice")) == 2
        await sso_one.logout(QlikIdentity("ACME", "alice"))
        assert sim.live_sessions("ACME\\alice") == []
        # Safe to call again with nothing left.
        await sso_one.logout(QlikIdentity("ACME", "alice"))


async def test_header_auth_refuses_attributes_it_cannot_carry(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator, resolver=resolver)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        response = await client.get("/sso/qps/user")
    assert response.status_code == 500
    assert response.json()["error"] == "Qlik SSO is misconfigured"
    assert simulator.requests == []
