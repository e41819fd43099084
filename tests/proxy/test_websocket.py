"""The WebSocket path through the middleware: engine JSON-RPC, big frames, close codes, CSRF, Origin."""

from __future__ import annotations

import json
import os

import httpx2 as httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator

from ..apps import build_app
from ..servers import serve
from ..waiting import eventually

pytestmark = pytest.mark.usefixtures("ws_client_name")


def ws_url(base: str, path: str) -> str:
    return "ws" + base[len("http") :] + path


async def test_engine_round_trip_as_the_logged_in_user(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    app_id = DEMO_APPS[0].id
    async with serve(app) as url:
        # An old mashup: no qlik-csrf-token in its URL; the middleware adds the session's token.
        async with connect(
            ws_url(url, f"/sso/app/{app_id}"),
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "app_user=alice"},
            max_size=None,
        ) as ws:
            auth = json.loads(await ws.recv())
            assert auth["method"] == "OnAuthenticationInformation"
            assert auth["params"]["mustAuthenticate"] is False
            assert (auth["params"]["userDirectory"], auth["params"]["userId"]) == ("ACME", "alice")
            connected = json.loads(await ws.recv())
            assert connected["params"]["qSessionState"] == "SESSION_CREATED"
            await ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "OpenDoc",
                        "handle": -1,
                        "params": [app_id],
                    }
                )
            )
            opened = json.loads(await ws.recv())
            assert opened["id"] == 1
            assert opened["result"]["qReturn"]["qType"] == "Doc"
    handshakes = [r for r in simulator.requests if r.websocket]
    assert len(handshakes) == 1
    assert handshakes[0].user == "ACME\\alice"
    assert "qlik-csrf-token=" in handshakes[0].query
    assert handshakes[0].header("hdr-usr") == ["ACME\\alice"]


async def test_big_messages_round_trip_intact_both_ways(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    payload = os.urandom(20 * 1024 * 1024)
    text = "x" * (3 * 1024 * 1024)
    async with (
        serve(app) as url,
        connect(
            ws_url(url, "/sso/app/_sim_echo"),
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "app_user=alice"},
            max_size=None,
        ) as ws,
    ):
        await ws.send(payload)
        assert await ws.recv() == payload
        await ws.send(text)
        assert await ws.recv() == text


async def test_close_codes_and_reasons_propagate_both_ways(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    async with serve(app) as url:
        # Qlik closes -> the browser sees Qlik's code and reason.
        async with connect(
            ws_url(url, "/sso/app/_sim_echo"),
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "app_user=alice"},
        ) as ws:
            await ws.send("close:4321:upstream says bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4321
            assert ws.close_reason == "upstream says bye"
        # The browser closes -> Qlik sees the browser's code and reason.
        async with connect(
            ws_url(url, "/sso/app/_sim_echo"),
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "app_user=alice"},
        ) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.close(4000, "browser suspends")
    await eventually(
        lambda: any(f.direction == "close_in" for f in simulator.frames), "Qlik to see the close"
    )
    closes = [f for f in simulator.frames if f.direction == "close_in"]
    assert (closes[-1].close_code, closes[-1].close_reason) == (4000, "browser suspends")


async def test_foreign_origin_is_refused_before_anything_reaches_qlik(
    simulator: QlikSimulator,
) -> None:
    app, _ = build_app(simulator)
    async with serve(app) as url:
        for origin in ("https://evil.example", "null", None):
            with pytest.raises(InvalidStatus) as info:
                async with connect(
                    ws_url(url, f"/sso/app/{DEMO_APPS[0].id}"),
                    origin=origin,  # type: ignore[arg-type]
                    additional_headers={"cookie": "app_user=alice"},
                ):
                    pass
            assert info.value.response.status_code == 403
    assert simulator.requests == []


async def test_no_user_closes_with_1008(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    async with serve(app) as url:
        async with connect(ws_url(url, f"/sso/app/{DEMO_APPS[0].id}"), origin=url) as ws:  # type: ignore[arg-type]
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008
            assert ws.close_reason == "Not logged in"
    assert simulator.requests == []


async def test_spoofed_identity_on_the_upgrade_never_reaches_qlik(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    async with (
        serve(app) as url,
        connect(
            ws_url(url, f"/sso/app/{DEMO_APPS[0].id}?qlikTicket=stolen&qlik-csrf-token=forged"),
            origin=url,  # type: ignore[arg-type]
            additional_headers=[
                ("cookie", "app_user=alice; X-Qlik-Session-sso-HTTP=forged"),
                ("hdr_usr", "ACME\\admin"),
                ("HDR-USR", "ACME\\admin"),
                ("authorization", "Bearer forged"),
            ],
        ) as ws,
    ):
        auth = json.loads(await ws.recv())
        assert auth["params"]["userId"] == "alice"
    handshake = next(r for r in simulator.requests if r.websocket)
    assert handshake.header("hdr-usr") == ["ACME\\alice"]
    assert "stolen" not in handshake.query
    assert "forged" not in handshake.query
    assert handshake.header("authorization") == []
    assert handshake.cookies.get("X-Qlik-Session-sso-HTTP") != "forged"


async def test_engine_session_qlik_forgot_is_renewed_transparently(
    simulator: QlikSimulator,
) -> None:
    app, _ = build_app(simulator)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        await client.get("/sso/qps/user")
        simulator.restart()
        async with connect(
            ws_url(url, f"/sso/app/{DEMO_APPS[0].id}"),
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "app_user=alice"},
        ) as ws:
            auth = json.loads(await ws.recv())
            assert auth["params"]["mustAuthenticate"] is False
            assert json.loads(await ws.recv())["method"] == "OnConnected"
    assert simulator.logins("ACME\\alice") == 2
