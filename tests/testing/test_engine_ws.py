"""The engine WebSocket of the simulated proxy: handshake rules, greetings, JSON-RPC, fatal notices."""

from __future__ import annotations

import asyncio
import json
import ssl

import httpx2 as httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from qlik_sso_middleware.testing import DEMO_APPS, ManualClock, QlikSimulator, VirtualProxy

from ..waiting import eventually
from .conftest import APP, USER, api_client, login, recv_json, rpc, ws_url, xrf


async def _closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Read until the server's close arrives (bounded); return the close code and reason."""
    for _ in range(100):
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed:
            return ws.close_code, ws.close_reason
    raise AssertionError("the server never closed the socket")


async def test_greeting_created_then_attached(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    path = f"/sso/app/{APP}?qlik-csrf-token={token}"
    async with connect(ws_url(sim, path), additional_headers={"Cookie": cookie}) as ws:
        auth = await recv_json(ws)
        connected = await recv_json(ws)
        async with connect(ws_url(sim, path), additional_headers={"Cookie": cookie}) as second:
            await recv_json(second)
            attached = await recv_json(second)
    assert auth == {
        "jsonrpc": "2.0",
        "method": "OnAuthenticationInformation",
        "params": {"userId": "alice", "userDirectory": "ACME", "mustAuthenticate": False},
    }
    assert connected["method"] == "OnConnected"
    assert connected["params"] == {"qSessionState": "SESSION_CREATED"}
    assert attached["params"] == {"qSessionState": "SESSION_ATTACHED"}
    handshakes = [r for r in sim.requests if r.websocket]
    assert [r.status for r in handshakes] == [101, 101]
    assert handshakes[0].user == USER


async def test_identity_path_and_engine_data_get_their_own_engine_session(
    sim: QlikSimulator,
) -> None:
    _, cookie, token = await login(sim)
    for path in (f"/sso/app/{APP}", f"/sso/app/{APP}/identity/tab2/ttl/30", "/sso/app/engineData"):
        url = ws_url(sim, f"{path}?qlik-csrf-token={token}")
        async with connect(url, additional_headers={"Cookie": cookie}) as ws:
            await recv_json(ws)
            assert (await recv_json(ws))["params"]["qSessionState"] == "SESSION_CREATED"


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),  # no token
        ("?qlik-csrf-token=wrong", {}),
        ("?qlik-csrf-token={token}", {"Authorization": "Bearer x"}),
        ("?qlik-csrf-token={token}", {"Origin": "https://evil.test"}),
    ],
)
async def test_handshake_refused_with_403(
    sim: QlikSimulator, query: str, headers: dict[str, str]
) -> None:
    _, cookie, token = await login(sim)
    url = ws_url(sim, f"/sso/app/{APP}" + query.format(token=token))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Cookie": cookie, **headers}):
            pass
    assert refused.value.response.status_code == 403
    assert sim.requests[-1].websocket
    assert sim.requests[-1].status == 403


async def test_origin_rules(clock: ManualClock) -> None:
    vp = VirtualProxy(host_allow_list=["portal.test"])
    async with QlikSimulator([vp], clock=clock, api=False) as sim:
        _, cookie, token = await login(sim)
        url = ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}")
        for origin in ("http://127.0.0.1:1234", "https://portal.test", "https://PORTAL.test:8443"):
            async with connect(url, additional_headers={"Cookie": cookie, "Origin": origin}) as ws:
                assert (await recv_json(ws))["params"]["mustAuthenticate"] is False
        with pytest.raises(InvalidStatus):
            async with connect(
                url, additional_headers={"Cookie": cookie, "Origin": "https://portal.test.evil"}
            ):
                pass


async def test_extended_csrf_can_be_switched_off(clock: ManualClock) -> None:
    async with QlikSimulator([VirtualProxy(extended_ws_csrf=False)], clock=clock, api=False) as sim:
        _, cookie, _ = await login(sim)
        async with connect(
            ws_url(sim, f"/sso/app/{APP}"), additional_headers={"Cookie": cookie}
        ) as ws:
            assert (await recv_json(ws))["params"]["mustAuthenticate"] is False


async def test_no_session_gets_must_authenticate_then_close(sim: QlikSimulator) -> None:
    url = f"ws://localhost:{sim.proxy_port}/sso/app/{APP}"
    async with connect(url) as ws:
        notice = await recv_json(ws)
        await _closed(ws)
    assert notice["method"] == "OnAuthenticationInformation"
    assert notice["params"]["mustAuthenticate"] is True
    assert notice["params"]["loginUri"].startswith(
        f"http://localhost:{sim.proxy_port}/sso/internal_forms_authentication/"
    )


async def test_unknown_app_gets_no_engine_available(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    url = ws_url(sim, f"/sso/app/not-an-app?qlik-csrf-token={token}")
    async with connect(url, additional_headers={"Cookie": cookie}) as ws:
        await recv_json(ws)
        notice = await recv_json(ws)
        await _closed(ws)
    assert notice["method"] == "OnNoEngineAvailable"
    assert notice["params"]["severity"] == "fatal"


async def test_json_rpc_methods(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    url = ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}")
    async with connect(url, additional_headers={"Cookie": cookie}) as ws:
        await recv_json(ws)
        await recv_json(ws)
        version = await rpc(ws, 1, "EngineVersion", -1)
        product = await rpc(ws, 2, "ProductVersion", -1)
        user = await rpc(ws, 3, "GetAuthenticatedUser", -1)
        docs = await rpc(ws, 4, "GetDocList", -1)
        no_doc = await rpc(ws, 5, "GetActiveDoc", -1)
        opened = await rpc(ws, 6, "OpenDoc", -1, APP)
        active = await rpc(ws, 7, "GetActiveDoc", -1)
        layout = await rpc(ws, 8, "GetAppLayout", 1)
        infos = await rpc(ws, 9, "GetAllInfos", 1)
        obj = await rpc(ws, 10, "GetObject", 1, "sales-table")
        handle = obj["result"]["qReturn"]["qHandle"]
        obj_layout = await rpc(ws, 11, "GetLayout", handle)
        page = {"qTop": 1, "qLeft": 0, "qWidth": 3, "qHeight": 2}
        data = await rpc(ws, 12, "GetHyperCubeData", handle, "/qHyperCubeDef", [page])
        unknown = await rpc(ws, 13, "NoSuchMethod", -1)
        bad_handle = await rpc(ws, 14, "GetLayout", 99)
        await ws.send("{not json")
        parse_error = await recv_json(ws)
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 15,
                    "method": "OpenDoc",
                    "handle": -1,
                    "params": {"qDocName": "missing"},
                }
            )
        )
        missing = await recv_json(ws)
    assert version["result"]["qVersion"]["qComponentVersion"]
    assert product["result"]["qReturn"]
    assert user["result"]["qReturn"] == "UserDirectory=ACME; UserId=alice"
    assert {d["qDocId"] for d in docs["result"]["qDocList"]} == {a.id for a in DEMO_APPS}
    assert "error" in no_doc
    assert opened["result"]["qReturn"] == {"qType": "Doc", "qHandle": 1, "qGenericId": APP}
    assert active["result"]["qReturn"]["qHandle"] == 1
    assert layout["result"]["qLayout"]["qTitle"] == "Sales"
    assert {"qId": "sales-bar", "qType": "barchart"} in infos["result"]["qInfos"]
    assert obj["result"]["qReturn"]["qType"] == "GenericObject"
    cube = obj_layout["result"]["qLayout"]["qHyperCube"]
    assert [d["qFallbackTitle"] for d in cube["qDimensionInfo"]] == ["Region"]
    assert [m["qFallbackTitle"] for m in cube["qMeasureInfo"]] == ["Revenue", "Orders"]
    assert cube["qDataPages"][0]["qMatrix"][0][0]["qText"] == "North"
    matrix = data["result"]["qDataPages"][0]["qMatrix"]
    assert [row[0]["qText"] for row in matrix] == ["South", "East"]
    assert unknown["error"]["code"] == -32601
    assert "error" in bad_handle
    assert parse_error["error"]["code"] == -32700
    assert missing["error"]["code"] == 1002


async def test_logout_delete_and_restart_close_sockets_with_session_closed(
    sim: QlikSimulator,
) -> None:
    async def open_engine() -> tuple[ClientConnection, str]:
        _session_id, cookie, token = await login(sim)
        url = ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}")
        ws = await connect(url, additional_headers={"Cookie": cookie})
        await recv_json(ws)
        await recv_json(ws)
        return ws, cookie

    ws, cookie = await open_engine()
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        await client.delete("/sso/qps/user", headers={"Cookie": cookie})
    notice = await recv_json(ws)
    assert notice["method"] == "OnSessionClosed"
    assert notice["params"]["severity"] == "fatal"
    await _closed(ws)

    ws, cookie = await open_engine()
    session_id = cookie.partition("=")[2]
    async with api_client(sim) as api:
        path, headers = xrf(f"/qps/sso/session/{session_id}")
        assert (await api.delete(path, headers=headers)).status_code == 200
    assert (await recv_json(ws))["method"] == "OnSessionClosed"
    await _closed(ws)

    ws, _ = await open_engine()
    sim.restart()
    assert (await recv_json(ws))["method"] == "OnSessionClosed"
    await _closed(ws)
    assert sim.live_sessions() == []


async def test_a_restart_during_the_greeting_still_closes_the_socket(
    sim: QlikSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qlik ends every socket of a session it ends, even one still being greeted: the restart
    lands after the access pass check and before the socket is registered for the sweep."""
    state = sim._state
    use = state.use

    def use_then_restart(session: object) -> None:
        use(session)  # type: ignore[arg-type]
        state.restart()

    _, cookie, token = await login(sim)
    monkeypatch.setattr(state, "use", use_then_restart)
    url = ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}")
    async with connect(url, additional_headers={"Cookie": cookie}) as ws:
        assert (await recv_json(ws))["method"] == "OnAuthenticationInformation"
        assert (await recv_json(ws))["method"] == "OnConnected"
        notice = await recv_json(ws)
        code, _ = await _closed(ws)
    assert notice["method"] == "OnSessionClosed"
    assert code == 1000
    assert sim.live_sessions() == []


async def test_timeout_closes_sockets_and_ws_traffic_slides_it(clock: ManualClock) -> None:
    async with QlikSimulator([VirtualProxy(session_timeout=100)], clock=clock, api=False) as sim:
        _, cookie, token = await login(sim)
        url = ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}")
        async with connect(url, additional_headers={"Cookie": cookie}) as ws:
            await recv_json(ws)
            await recv_json(ws)
            for request_id in range(1, 4):
                clock.advance(60)
                assert "result" in await rpc(ws, request_id, "EngineVersion", -1)
            assert len(sim.live_sessions()) == 1
            clock.advance(100)
            notice = await recv_json(ws)
            code, _ = await _closed(ws)
    assert notice["method"] == "OnSessionTimedOut"
    assert notice["params"]["severity"] == "fatal"
    assert code == 1000
    assert sim.live_sessions() == []


async def test_ticket_on_the_ws_url_logs_in_and_sets_the_cookie(sim: QlikSimulator) -> None:
    async with api_client(sim) as api:
        path, headers = xrf("/qps/sso/ticket")
        ticket = (
            await api.post(path, headers=headers, json={"UserDirectory": "ACME", "UserId": "carol"})
        ).json()["Ticket"]
    async with connect(ws_url(sim, f"/sso/app/{APP}?QlikTicket={ticket}")) as ws:
        auth = await recv_json(ws)
        set_cookie = ws.response.headers["Set-Cookie"] if ws.response else ""
    assert auth["params"]["userId"] == "carol"
    assert set_cookie.startswith("X-Qlik-Session-sso-HTTP=")
    assert sim.logins("ACME\\carol") == 1


async def test_max_sessions_and_no_access_pass_notices(clock: ManualClock) -> None:
    vp = VirtualProxy(max_parallel_sessions=1, extended_ws_csrf=False)
    async with QlikSimulator([vp], clock=clock, api=False) as sim:
        await login(sim)
        url = ws_url(sim, f"/sso/app/{APP}")
        async with connect(url, additional_headers={"hdr-usr": USER}) as ws:
            too_many = await recv_json(ws)
            await _closed(ws)
        sim.faults.no_access_pass = True
        async with connect(url, additional_headers={"hdr-usr": "ACME\\bob"}) as ws:
            denied = await recv_json(ws)
            await _closed(ws)
    assert too_many["method"] == "OnMaxParallelSessionsExceeded"
    assert too_many["params"]["severity"] == "fatal"
    assert denied["method"] == "OnLicenseAccessDenied"


async def test_echo_socket_frames_closes_and_recording(sim: QlikSimulator) -> None:
    session_id, cookie, token = await login(sim)
    url = ws_url(sim, f"/sso/app/_sim_echo?qlik-csrf-token={token}")
    big = bytes(range(256)) * 8192  # 2 MiB
    async with connect(url, additional_headers={"Cookie": cookie}, max_size=None) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(big)
        assert await ws.recv() == big
        await ws.send("close:4001:bye now")
        code, reason = await _closed(ws)
    assert (code, reason) == (4001, "bye now")
    inbound = [f for f in sim.frames if f.direction == "in"]
    assert inbound[0].data == "hello"
    assert inbound[0].session_id == session_id
    assert inbound[0].user == USER
    assert inbound[1].kind == "bytes"
    assert inbound[1].size == len(big)
    assert inbound[1].truncated
    assert isinstance(inbound[1].data, str)
    assert len(inbound[1].data) == 64
    close_out = [f for f in sim.frames if f.direction == "close_out"]
    assert close_out[-1].close_code == 4001


async def test_client_close_code_is_recorded(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    url = ws_url(sim, f"/sso/app/_sim_echo?qlik-csrf-token={token}")
    async with connect(url, additional_headers={"Cookie": cookie}) as ws:
        await ws.close(4321, "client says bye")
    await eventually(lambda: any(f.direction == "close_in" for f in sim.frames))
    [close_in] = [f for f in sim.frames if f.direction == "close_in"]
    assert (close_in.close_code, close_in.close_reason) == (4321, "client says bye")


async def test_faults_close_websockets_with_a_code(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    url = ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}")
    async with connect(url, additional_headers={"Cookie": cookie}) as ws:
        await recv_json(ws)
        await recv_json(ws)
        assert await sim.faults.close_websockets(1011, "engine crashed") == 1
        code, reason = await _closed(ws)
    assert (code, reason) == (1011, "engine crashed")


async def test_malformed_requests_get_errors_and_the_socket_survives(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    url = ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}")
    async with connect(url, additional_headers={"Cookie": cookie}) as ws:
        await recv_json(ws)
        await recv_json(ws)
        await rpc(ws, 1, "OpenDoc", -1, APP)
        obj = await rpc(ws, 2, "GetObject", 1, "sales-table")
        handle = obj["result"]["qReturn"]["qHandle"]
        bad_pages = await rpc(ws, 3, "GetHyperCubeData", handle, "/qHyperCubeDef", [1, "x"])
        await ws.send("[" * 100_000)
        deep = await recv_json(ws)
        await ws.send(json.dumps([1, 2]))
        not_object = await recv_json(ws)
        await ws.send(b"\x00\x01binary")
        still = await rpc(ws, 4, "EngineVersion", -1)
    assert bad_pages["error"]["code"] == -32602
    assert deep["error"]["code"] == -32700
    assert not_object["error"]["code"] == -32600
    assert "result" in still


async def test_header_only_handshake_with_csrf_is_refused_without_a_login(
    sim: QlikSimulator,
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(sim, f"/sso/app/{APP}"), additional_headers={"hdr-usr": USER}):
            pass
    assert refused.value.response.status_code == 403
    assert sim.logins() == 0


async def test_unknown_prefix_and_unknown_ws_path_are_refused(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    statuses = []
    for path in (f"/nope/app/{APP}", f"/sso/hub/?qlik-csrf-token={token}"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(sim, path), additional_headers={"Cookie": cookie}):
                pass
        statuses.append(refused.value.response.status_code)
    assert statuses == [400, 404]


async def test_wss_on_an_https_proxy(clock: ManualClock) -> None:
    async with QlikSimulator(https=True, api=False, clock=clock) as sim:
        assert sim.certificates is not None
        context = ssl.create_default_context(cafile=str(sim.certificates.root))
        async with httpx.AsyncClient(base_url=sim.proxy_url, verify=context) as client:
            await client.get("/sso/hub/", headers={"hdr-usr": USER})
            token = (await client.get("/sso/qps/csrftoken")).headers["qlik-csrf-token"]
            cookie = f"X-Qlik-Session-sso={client.cookies['X-Qlik-Session-sso']}"
        url = f"wss://localhost:{sim.proxy_port}/sso/app/{APP}?qlik-csrf-token={token}"
        async with connect(url, ssl=context, additional_headers={"Cookie": cookie}) as ws:
            assert (await recv_json(ws))["params"]["userId"] == "alice"
            assert (await recv_json(ws))["method"] == "OnConnected"


async def test_fail_next_refuses_a_handshake(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    sim.faults.fail_next(503, path_contains="/app/")
    url = ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Cookie": cookie}):
            pass
    assert refused.value.response.status_code == 503
    async with connect(url, additional_headers={"Cookie": cookie}) as ws:
        assert (await recv_json(ws))["method"] == "OnAuthenticationInformation"
