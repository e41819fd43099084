"""The proxy's HTTP and WebSocket behaviour under every ASGI server (`asgi_server`): relay, large
messages, close codes, refusals, the CSRF token, recovery. Each server runs with its defaults.

Where a server differs and the middleware cannot hide it, `SERVER_LIMITS` pins the difference and
README's "ASGI servers" table says what a deployment must set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from typing import Any

import httpx2 as httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from qlik_sso_middleware.testing import DEMO_APPS, SimulatorThread

MiB = 1024 * 1024

#: What reaches Qlik when the browser closes with (4000, "browser suspends"): hypercorn hands
#: the app 1006 for every close a client starts (pgjones/hypercorn#127); granian and daphne drop
#: the reason.
BROWSER_CLOSE_AT_QLIK = {
    "uvicorn": (4000, "browser suspends"),
    "hypercorn": (1011, ""),
    "granian": (4000, ""),
    "daphne": (4000, ""),
}
#: What the browser sees when Qlik closes with (4321, "upstream says bye"): daphne drops reasons.
QLIK_CLOSE_AT_BROWSER = {
    "uvicorn": (4321, "upstream says bye"),
    "hypercorn": (4321, "upstream says bye"),
    "granian": (4321, "upstream says bye"),
    "daphne": (4321, ""),
}

#: Per server, with its defaults: the largest WebSocket message a browser may send through it,
#: and the close code the browser sees past it (the server refuses before the app sees anything).
INBOUND_LIMIT = {
    "uvicorn": (16 * MiB, {1009}),  # --ws-max-size
    "hypercorn": (16 * MiB, {1009}),  # websocket_max_message_size
    # tungstenite's frame limit: ends the connection without saying why (no 1009): a close
    # without status code, a reset, or whatever the client then reports
    "granian": (16 * MiB, {1000, 1005, 1006}),
    "daphne": (1 * MiB, {1006}),  # --websocket-max-message-size: drops the TCP connection
}
#: The largest message the app may send to the browser (None: no limit). Past it daphne refuses
#: the app's send; the middleware then closes both sides at once (Qlik sees 1009).
OUTBOUND_LIMIT: dict[str, int | None] = {
    "uvicorn": None,
    "hypercorn": None,
    "granian": None,
    "daphne": 1 * MiB,
}


def open_ws(url: str, path: str, *, user: str | None = "alice", **options: Any) -> Any:
    headers = {"cookie": f"app_user={user}"} if user else {}
    options.setdefault("origin", url)
    return connect(
        "ws" + url[4:] + path,
        additional_headers=headers,
        max_size=None,
        open_timeout=20,
        **options,
    )


async def closed_by_peer(ws: ClientConnection) -> tuple[int | None, str | None]:
    """The close code and reason the server ended `ws` with (1006: no close frame, or a reset)."""
    with pytest.raises((ConnectionClosed, ConnectionResetError)):
        await asyncio.wait_for(ws.recv(), 30)
    return ws.close_code, ws.close_reason


async def test_http_relay_both_ways(app_url: str) -> None:
    body = os.urandom(3 * MiB)
    async with httpx.AsyncClient(base_url=app_url, cookies={"app_user": "hanna"}) as browser:
        user = await browser.get("/sso/qps/user", headers={"accept": "application/json"})
        download = await browser.get("/sso/content/_sim/bytes?size=" + str(5 * MiB))
        upload = await browser.post("/sso/content/_sim/upload", content=body)
        blocked = await browser.get("/sso/qrs/about")
    assert (user.status_code, user.json()["userId"]) == (200, "hanna")
    assert (download.status_code, len(download.content)) == (200, 5 * MiB)
    assert upload.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert blocked.status_code == 403


async def test_engine_round_trip_with_the_session_csrf_token(
    app_url: str, matrix_sim: SimulatorThread
) -> None:
    app_id = DEMO_APPS[0].id
    async with open_ws(app_url, f"/sso/app/{app_id}", user="carl") as ws:
        auth = json.loads(await ws.recv())
        assert (auth["params"]["userId"], auth["params"]["mustAuthenticate"]) == ("carl", False)
        assert json.loads(await ws.recv())["method"] == "OnConnected"
        request = {"jsonrpc": "2.0", "id": 1, "method": "OpenDoc", "handle": -1, "params": [app_id]}
        await ws.send(json.dumps(request))
        assert json.loads(await ws.recv())["result"]["qReturn"]["qType"] == "Doc"
    handshake = [r for r in matrix_sim.requests if r.websocket and r.user == "ACME\\carl"]
    assert len(handshake) == 1
    assert "qlik-csrf-token=" in handshake[0].query


@pytest.mark.parametrize("direction", ["browser to Qlik", "Qlik to browser"])
async def test_large_messages_up_to_the_server_limit(
    app_url: str, asgi_server: str, direction: str
) -> None:
    limit = (
        INBOUND_LIMIT[asgi_server][0]
        if direction == "browser to Qlik"
        else OUTBOUND_LIMIT[asgi_server] or 20 * MiB
    )
    async with open_ws(app_url, "/sso/app/_sim_echo", user="dora") as ws:
        if direction == "browser to Qlik":
            await ws.send(b"b" * limit)
        else:
            await ws.send(f"send:{limit}")
        assert len(await asyncio.wait_for(ws.recv(), 60)) == limit
        await ws.send("still open")
        assert await ws.recv() == "still open"


async def test_browser_message_past_the_server_limit(app_url: str, asgi_server: str) -> None:
    limit, codes = INBOUND_LIMIT[asgi_server]
    async with open_ws(app_url, "/sso/app/_sim_echo", user="dora") as ws:
        # granian may reset the connection while the message is still going out.
        with contextlib.suppress(ConnectionClosed, ConnectionResetError):
            await ws.send(b"b" * (limit + 1))
        assert (await closed_by_peer(ws))[0] in codes


async def test_qlik_message_past_the_daphne_limit(
    app_url: str, asgi_server: str, matrix_sim: SimulatorThread
) -> None:
    size = MiB + 1
    async with open_ws(app_url, "/sso/app/_sim_echo", user="erik") as ws:
        await ws.send(f"send:{size}")
        if OUTBOUND_LIMIT[asgi_server] is None:
            assert len(await asyncio.wait_for(ws.recv(), 60)) == size
            return
        # daphne refuses the app's send: closed at once, not left waiting, with 1009's private
        # twin (daphne lets an app close with 1000 or 3000-4999 only), and Qlik learns why.
        assert (await closed_by_peer(ws))[0] == 4009
    assert [code for code, _ in browser_closes(matrix_sim, "erik")] == [1009]


def browser_closes(sim: SimulatorThread, user: str) -> list[tuple[int | None, str]]:
    return [
        (f.close_code, f.close_reason)
        for f in sim.frames
        if f.direction == "close_in" and f.user == f"ACME\\{user}"
    ]


async def test_close_codes_both_ways(
    app_url: str, asgi_server: str, matrix_sim: SimulatorThread
) -> None:
    async with open_ws(app_url, "/sso/app/_sim_echo", user="fay") as ws:
        await ws.send("close:4321:upstream says bye")
        assert await closed_by_peer(ws) == QLIK_CLOSE_AT_BROWSER[asgi_server]
    async with open_ws(app_url, "/sso/app/_sim_echo", user="fay") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.close(4000, "browser suspends")
    expected = BROWSER_CLOSE_AT_QLIK[asgi_server]
    for _ in range(500):  # bounded: 10 s
        if expected in browser_closes(matrix_sim, "fay"):
            break
        await asyncio.sleep(0.02)
    assert browser_closes(matrix_sim, "fay")[-1] == expected


async def test_refusals(app_url: str, asgi_server: str, matrix_sim: SimulatorThread) -> None:
    before = len(matrix_sim.requests)
    with pytest.raises(InvalidStatus) as info:
        async with open_ws(app_url, f"/sso/app/{DEMO_APPS[0].id}", origin="https://evil.example"):
            pass
    assert info.value.response.status_code == 403
    async with open_ws(app_url, f"/sso/app/{DEMO_APPS[0].id}", user=None) as ws:
        # daphne: 1008's private twin (apps may not send 1008 there) and no reason at all.
        expected = (4008, "") if asgi_server == "daphne" else (1008, "Not logged in")
        assert await closed_by_peer(ws) == expected
    assert len(matrix_sim.requests) == before  # nothing reached Qlik


async def test_recovery_after_qlik_forgot_every_session(
    app_url: str, matrix_sim: SimulatorThread
) -> None:
    async with httpx.AsyncClient(base_url=app_url, cookies={"app_user": "gus"}) as browser:
        assert (await browser.get("/sso/qps/user")).status_code == 200
        matrix_sim.restart()  # Qlik restarted: the cached session is unknown to it
        async with open_ws(app_url, f"/sso/app/{DEMO_APPS[0].id}", user="gus") as ws:
            auth = json.loads(await ws.recv())
            assert auth["params"]["mustAuthenticate"] is False
            assert json.loads(await ws.recv())["method"] == "OnConnected"
        echo = await browser.get("/sso/content/_sim/echo")
    assert echo.json()["user"] == "ACME\\gus"
    assert matrix_sim.logins("ACME\\gus") == 2
