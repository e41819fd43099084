"""`qlik-sso demo --cloud` driven as a user would: the real command in a subprocess, the app's login
form, the token broker, the cookie proxy's page, API and engine WebSocket, then logout."""

from __future__ import annotations

import json

import httpx2 as httpx
from websockets.asyncio.client import connect
from websockets.typing import Origin

from qlik_sso_middleware.demo.settings import DEMO_APP_ID
from qlik_sso_middleware.testing import DEMO_APPS
from tests.browser.demo_process import running_demo
from tests.cli.test_demo import _csrf, _login, _rpc

_APP = next(app for app in DEMO_APPS if app.id == DEMO_APP_ID)


async def test_the_cloud_demo_serves_both_modes_to_the_logged_in_user() -> None:
    async with (
        running_demo("--cloud") as demo,
        httpx.AsyncClient(base_url=demo.url, timeout=60) as client,
    ):
        for fixed in ("Qlik Cloud simulator", "POST /qlik-cloud/access-token", "alice / demo"):
            assert fixed in demo.banner
        before = await client.post("/qlik-cloud/access-token")
        assert (await _login(client, "alice", "demo")).status_code == 303
        same_origin = {"origin": demo.url, "sec-fetch-site": "same-origin"}
        token = await client.post("/qlik-cloud/access-token", headers=same_origin)
        page = await client.get(f"/qlik-cloud/single/?appid={DEMO_APP_ID}")
        me = await client.get("/qlik-cloud/api/v1/users/me", follow_redirects=True)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        async with connect(
            demo.url.replace("http", "ws") + f"/qlik-cloud/app/{DEMO_APP_ID}",
            origin=Origin(demo.url),
            additional_headers={"cookie": cookie},
        ) as ws:
            greeting = json.loads(await ws.recv())
            who = await _rpc(ws, 1, -1, "GetAuthenticatedUser", [])
            doc = await _rpc(ws, 2, -1, "OpenDoc", [DEMO_APP_ID])
            layout = await _rpc(ws, 3, doc["qReturn"]["qHandle"], "GetAppLayout", [])
        home = await client.get("/")
        logout = await client.post("/logout", data={"csrf": _csrf(home.text)}, headers=same_origin)
        after = await client.post("/qlik-cloud/access-token", headers=same_origin)
    assert before.status_code == 401
    assert token.status_code == 200 and token.json()["token_type"] == "Bearer"
    assert page.status_code == 200 and _APP.name in page.text
    assert "set-cookie" not in page.headers
    assert me.json()["subject"] == "ACME\\alice"  # created by the JWT login, name and e-mail
    assert me.json()["email"] == "alice@acme.example"
    assert greeting["method"] == "OnConnected"
    assert who["qReturn"] == "UserDirectory=; UserId=ACME\\alice"
    assert layout["qLayout"]["qTitle"] == _APP.name
    assert logout.status_code == 303
    assert after.status_code == 401
