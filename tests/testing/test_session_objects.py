"""Session objects over the engine WebSocket: `CreateSessionObject` with a hypercube (what @qlik/api
and qlik-embed's charts on the fly send), its layout and data pages, lifetime per connection."""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from qlik_sso_middleware.testing import QlikSimulator

from .conftest import APP, login, recv_json, rpc, ws_url

CUBE = {
    "qInfo": {"qType": "my-cube"},
    "title": "Revenue by region",
    "qHyperCubeDef": {
        "qDimensions": [{"qDef": {"qFieldDefs": ["Region"]}}],
        "qMeasures": [{"qDef": {"qDef": "=Sum([Revenue])", "qLabel": "Revenue"}}],
        "qInitialDataFetch": [{"qTop": 0, "qLeft": 0, "qWidth": 2, "qHeight": 2}],
    },
}


async def _open(sim: QlikSimulator, cookie: str, token: str) -> Any:
    ws = await connect(
        ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}"),
        additional_headers={"Cookie": cookie},
    )
    await recv_json(ws)
    await recv_json(ws)
    await rpc(ws, 1, "OpenDoc", -1, APP)
    return ws


async def _create(ws: ClientConnection, request_id: int, props: Any) -> dict[str, Any]:
    answer: dict[str, Any] = await rpc(ws, request_id, "CreateSessionObject", 1, props)
    return answer


async def test_a_hypercube_from_the_demo_rows(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    ws = await _open(sim, cookie, token)
    async with ws:
        created = (await _create(ws, 2, CUBE))["result"]["qReturn"]
        handle = created["qHandle"]
        layout = (await rpc(ws, 3, "GetLayout", handle))["result"]["qLayout"]
        page = {"qTop": 2, "qLeft": 0, "qWidth": 2, "qHeight": 5}
        data = await rpc(ws, 4, "GetHyperCubeData", handle, "/qHyperCubeDef", [page])
        props = (await rpc(ws, 5, "GetProperties", handle))["result"]["qProp"]
        again = (await rpc(ws, 6, "GetObject", 1, created["qGenericId"]))["result"]["qReturn"]
        destroyed = (await rpc(ws, 7, "DestroySessionObject", 1, created["qGenericId"]))["result"]
        gone = (await rpc(ws, 8, "GetObject", 1, created["qGenericId"]))["result"]["qReturn"]
    assert created["qType"] == "GenericObject"
    assert created["qGenericType"] == "my-cube"
    assert layout["qInfo"] == {"qType": "my-cube", "qId": created["qGenericId"]}
    assert layout["title"] == "Revenue by region"
    cube = layout["qHyperCube"]
    assert [i["qFallbackTitle"] for i in cube["qDimensionInfo"] + cube["qMeasureInfo"]] == [
        "Region",
        "Revenue",
    ]
    assert cube["qSize"] == {"qcx": 2, "qcy": 4}
    matrix = cube["qDataPages"][0]["qMatrix"]
    assert [[c["qText"] for c in row] for row in matrix] == [
        ["North", "125,000"],
        ["South", "98,000"],
    ]
    assert matrix[0][1]["qNum"] == 125000.0
    rows = data["result"]["qDataPages"][0]["qMatrix"]
    assert [row[0]["qText"] for row in rows] == ["East", "West"]
    assert props["qHyperCubeDef"] == CUBE["qHyperCubeDef"]
    assert again["qGenericId"] == created["qGenericId"] and again["qHandle"] != handle
    assert destroyed == {"qSuccess": True}
    assert gone == {"qType": None, "qHandle": None}


async def test_unknown_fields_get_an_error_and_no_data(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    props = {
        "qInfo": {"qType": "broken"},
        "qHyperCubeDef": {
            "qDimensions": [{"qDef": {"qFieldDefs": ["Planet"]}}],
            "qMeasures": [{"qDef": {"qDef": "Sum(Revenue)"}}],
            "qInitialDataFetch": [{"qTop": 0, "qLeft": 0, "qWidth": 2, "qHeight": 5}],
        },
    }
    ws = await _open(sim, cookie, token)
    async with ws:
        handle = (await _create(ws, 2, props))["result"]["qReturn"]["qHandle"]
        cube = (await rpc(ws, 3, "GetLayout", handle))["result"]["qLayout"]["qHyperCube"]
        bad = await _create(ws, 4, "not an object")
    assert "qError" in cube["qDimensionInfo"][0]
    assert cube["qDataPages"] == []
    assert bad["error"]["code"] == -32602


async def test_session_objects_belong_to_their_connection(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    first = await _open(sim, cookie, token)
    async with first:
        created = (await _create(first, 2, CUBE))["result"]["qReturn"]
        second = await _open(sim, cookie, token)
        async with second:
            other = (await rpc(second, 2, "GetObject", 1, created["qGenericId"]))["result"]
    assert other["qReturn"] == {"qType": None, "qHandle": None}
