"""The simulated tenant's engine WebSocket `/app/<appId>`: the three ways in, refusals, JSON-RPC."""

from __future__ import annotations

import ssl

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from qlik_sso_middleware.testing import DEMO_APPS, ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair
from tests.testing.conftest import recv_json, rpc

from .conftest import (
    APP_ORIGIN,
    CLIENT,
    WEB_INTEGRATION,
    cookie_login,
    http,
    impersonate,
    machine_token,
)

APP = DEMO_APPS[0]


def _wss(sim: CloudSimulator, path: str) -> str:
    return sim.tenant_url.replace("https", "wss", 1) + path


def _tls(sim: CloudSimulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=sim.ca_file)


async def _refused(sim: CloudSimulator, path: str, **headers: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_wss(sim, path), ssl=_tls(sim), additional_headers=headers):
            pass
    return refused.value.response.status_code


async def test_bearer_header_opens_an_app_and_reads_its_layout(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        token = (await impersonate(client)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(
        _wss(tenant, f"/app/{APP.id}?reloadUri=x"), ssl=_tls(tenant), additional_headers=headers
    ) as ws:
        connected = await recv_json(ws)
        user = await rpc(ws, 1, "GetAuthenticatedUser", -1)
        opened = await rpc(ws, 2, "OpenDoc", -1, APP.id)
        layout = await rpc(ws, 3, "GetAppLayout", 1)
        async with connect(
            _wss(tenant, f"/app/{APP.id}"), ssl=_tls(tenant), additional_headers=headers
        ) as second:
            attached = await recv_json(second)
    assert connected == {
        "jsonrpc": "2.0",
        "method": "OnConnected",
        "params": {"qSessionState": "SESSION_CREATED"},
    }
    assert attached["params"] == {"qSessionState": "SESSION_ATTACHED"}
    assert user["result"]["qReturn"] == "UserDirectory=; UserId=auth0|alice"
    assert opened["result"]["qReturn"]["qHandle"] == 1
    assert layout["result"]["qLayout"]["qTitle"] == APP.name
    handshake = next(r for r in tenant.requests if r.websocket)
    assert (handshake.status, handshake.user) == (101, "auth0|alice")


async def test_browser_access_token_query_from_a_token_exchange(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        access = (await impersonate(client)).json()["access_token"]
        exchanged = await client.post(
            "/oauth/token",
            json={
                "client_id": CLIENT.client_id,
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": access,
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "purpose": "websocket",
            },
        )
    ws_token = exchanged.json()["access_token"]
    async with connect(
        _wss(tenant, f"/app/{APP.id}?accessToken={ws_token}"), ssl=_tls(tenant)
    ) as ws:
        assert (await recv_json(ws))["method"] == "OnConnected"
    assert await _refused(tenant, f"/app/{APP.id}?accessToken=forged") == 401


async def test_cookie_session_needs_the_csrf_token_and_an_allowed_origin(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    async with http(tenant) as client:
        cookie, csrf = await cookie_login(client, clock, signing_key)
    good = f"/app/{APP.id}?qlik-csrf-token={csrf}"
    async with connect(
        _wss(tenant, good), ssl=_tls(tenant), additional_headers={"Cookie": cookie}
    ) as ws:
        assert (await rpc(ws, 1, "GetAuthenticatedUser", -1))["result"]["qReturn"].endswith(
            "auth0|bob"
        )
    assert await _refused(tenant, f"/app/{APP.id}", Cookie=cookie) == 403
    assert await _refused(tenant, f"/app/{APP.id}?qlik-csrf-token=wrong", Cookie=cookie) == 403
    assert await _refused(tenant, good, Cookie=cookie, Origin=APP_ORIGIN) == 403
    with_integration = f"{good}&qlik-web-integration-id={WEB_INTEGRATION}"
    async with connect(
        _wss(tenant, with_integration),
        ssl=_tls(tenant),
        additional_headers={"Cookie": cookie, "Origin": APP_ORIGIN},
    ) as ws:
        assert (await recv_json(ws))["method"] == "OnConnected"


async def test_refusals_without_a_user_or_for_unknown_apps(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        token = (await impersonate(client)).json()["access_token"]
        machine = await machine_token(client)
    assert await _refused(tenant, f"/app/{APP.id}") == 401
    assert await _refused(tenant, f"/app/{APP.id}", Authorization=f"Bearer {machine}") == 401
    assert await _refused(tenant, "/app/no-such-app", Authorization=f"Bearer {token}") == 404
    assert await _refused(tenant, "/hub", Authorization=f"Bearer {token}") == 404
    statuses = [r.status for r in tenant.requests if r.websocket]
    assert statuses == [401, 401, 404, 404]
