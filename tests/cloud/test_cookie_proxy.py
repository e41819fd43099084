"""The cookie proxy end to end: the tenant's pages, API and engine WebSocket relayed on the app's
origin with each user's JWT-login cookies held server-side (real uvicorn, real TLS, real frames)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2 as httpx
import pytest
import websockets

from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair, WebIntegration
from qlik_sso_middleware.testing.demo_apps import DEMO_APPS
from tests.cloud.apps import MOUNT, TOKEN_URL, cloud_app, same_origin, signed_in
from tests.cloud.conftest import target_for
from tests.servers import serve

APP = DEMO_APPS[0]
INTEGRATION = "wi-app"


def page_url(obj: str | None = None) -> str:
    return f"{MOUNT}single/?appid={APP.id}&obj={obj or APP.objects[0].id}"


def integrated(sim: CloudSimulator, key: SigningKeyPair, url: str) -> None:
    """Let the app's origin use cookies at the tenant (the web integration the target names)."""
    sim.add_web_integration(WebIntegration(INTEGRATION, (url,)))


async def engine_call(ws: Any, method: str, handle: int = -1, params: Any = ()) -> Any:
    await ws.send(
        json.dumps(
            {"jsonrpc": "2.0", "id": 1, "handle": handle, "method": method, "params": list(params)}
        )
    )
    while True:
        message = json.loads(await ws.recv())
        if message.get("id") == 1:
            return message


async def test_a_page_is_relayed_with_the_users_own_session(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (_url, client):
        response = await client.get(page_url())
    assert response.status_code == 200
    assert APP.name in response.text
    assert "set-cookie" not in response.headers  # the tenant's cookies stay on the server
    assert response.headers["content-security-policy"] == "frame-ancestors 'self'"
    logins = [r for r in live_tenant.requests if r.path == "/login/jwt-session"]
    pages = [r for r in live_tenant.requests if r.path == "/single/"]
    assert [r.user for r in logins] == ["ACME\\alice"]
    assert [r.user for r in pages] == ["ACME\\alice"]
    # The tenant saw its own host name, and the session's CSRF token came along.
    assert pages[0].header("host") == [live_tenant.tenant_url.removeprefix("https://")]
    assert len(pages[0].header("qlik-csrf-token")) == 1


async def test_the_api_redirects_come_back_to_the_app_and_the_jwt_carried_the_user(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with (
        serve(app) as url,
        httpx.AsyncClient(
            base_url=url, cookies={"app_user": "alice", "app_group": "Sales"}
        ) as client,
    ):
        me = await client.get(f"{MOUNT}api/v1/users/me")
        location = me.headers["location"]
        user = await client.get(location)
    assert me.status_code == 301
    assert location.startswith(f"{url}{MOUNT}api/v1/users/")
    assert user.json()["subject"] == "ACME\\alice"
    assert user.json()["email"] == "alice@acme.example"
    # The JWT login set the group from the app's attributes (impersonation cannot).
    assert [g["name"] for g in user.json()["assignedGroups"]] == ["Sales"]


async def test_concurrent_first_requests_make_one_login(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "bob", timeout=60) as (_url, client):
        answers = await asyncio.gather(*(client.get(page_url()) for _ in range(40)))
    assert {a.status_code for a in answers} == {200}
    assert len([r for r in live_tenant.requests if r.path == "/login/jwt-session"]) == 1
    assert len([r for r in live_tenant.requests if r.path == "/api/v1/csrf-token"]) == 1
    assert live_tenant.live_sessions("ACME\\bob") == 1


async def test_a_modifying_request_carries_the_sessions_csrf_token(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (url, client):
        # The browser's own CSRF token, integration id and bearer token never reach the tenant.
        response = await client.post(
            f"{MOUNT}api/v1/users",
            json={"subject": "someone"},
            headers={
                **same_origin(url),
                "qlik-csrf-token": "forged",
                "authorization": "Bearer someone-elses-token",
                "cookie": "app_user=alice; eas.sid=stolen; eas.sid.sig=stolen",
            },
        )
    # Past the CSRF check (the tenant answers as to a user without the admin scope).
    errors = response.json()["errors"]
    assert response.status_code == 403
    assert errors[0]["code"] != "CSRF-1"
    posted = [r for r in live_tenant.requests if r.method == "POST" and r.path == "/api/v1/users"]
    assert posted[0].user == "ACME\\alice"
    assert posted[0].header("qlik-csrf-token") != ["forged"]
    assert posted[0].header("authorization") == []


async def test_the_engine_websocket_is_relayed_as_the_user(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    target = target_for(live_tenant, signing_key, web_integration_id=INTEGRATION)
    app, _ = cloud_app(live_tenant, signing_key, target=target)
    async with serve(app) as url:
        integrated(live_tenant, signing_key, url)
        async with websockets.connect(
            url.replace("http", "ws") + f"{MOUNT}app/{APP.id}",
            origin=websockets.Origin(url),
            additional_headers={"cookie": "app_user=alice"},
        ) as ws:
            greeting = json.loads(await ws.recv())
            who = await engine_call(ws, "GetAuthenticatedUser")
            doc = await engine_call(ws, "OpenDoc", params=[APP.id])
    assert greeting["method"] == "OnConnected"
    assert who["result"]["qReturn"] == "UserDirectory=; UserId=ACME\\alice"
    assert "qReturn" in doc["result"]
    handshake = next(r for r in live_tenant.requests if r.websocket)
    assert handshake.header("qlik-web-integration-id") == [INTEGRATION]
    assert "qlik-csrf-token=" in handshake.query


async def test_another_users_access_token_on_the_socket_url_never_reaches_the_tenant(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    """The tenant takes `accessToken=` on a socket URL over the session cookie: a browser that
    holds bob's token (from the broker, or anywhere) must still be alice through alice's app."""
    target = target_for(live_tenant, signing_key, web_integration_id=INTEGRATION)
    app, _ = cloud_app(live_tenant, signing_key, target=target)
    async with serve(app) as url:
        integrated(live_tenant, signing_key, url)
        async with httpx.AsyncClient(base_url=url, cookies={"app_user": "bob"}) as bob:
            granted = await bob.post(TOKEN_URL, headers=same_origin(url))
        assert granted.status_code == 200, granted.text
        bobs = granted.json()["access_token"]
        socket_url = url.replace("http", "ws") + f"{MOUNT}app/{APP.id}"
        async with websockets.connect(
            f"{socket_url}?accessToken={bobs}&AccessToken={bobs}&keep=1",
            origin=websockets.Origin(url),
            additional_headers={"cookie": "app_user=alice"},
        ) as ws:
            await ws.recv()
            who = await engine_call(ws, "GetAuthenticatedUser")
    assert who["result"]["qReturn"] == "UserDirectory=; UserId=ACME\\alice"
    handshake = next(r for r in live_tenant.requests if r.websocket)
    assert bobs not in handshake.query
    assert "keep=1" in handshake.query


async def test_without_a_web_integration_the_tenant_refuses_the_websocket_cleanly(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)  # names no web integration
    async with serve(app) as url:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                url.replace("http", "ws") + f"{MOUNT}app/{APP.id}",
                origin=websockets.Origin(url),
                additional_headers={"cookie": "app_user=alice"},
            ):
                pass
    assert refused.value.response.status_code == 403
    handshakes = [r for r in live_tenant.requests if r.websocket]
    assert [r.status for r in handshakes] == [403]


async def test_a_session_the_tenant_forgot_is_renewed_on_the_next_request(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (url, client):
        first = await client.get(f"{MOUNT}api/v1/csrf-token")
        assert live_tenant.end_sessions("ACME\\alice") == 1
        page = await client.get(page_url())  # 302 to the tenant's login: renewed, sent again
        assert live_tenant.end_sessions("ACME\\alice") == 1
        api = await client.get(f"{MOUNT}api/v1/csrf-token")  # 401: renewed, sent again
        assert live_tenant.end_sessions("ACME\\alice") == 1
        post = await client.post(
            f"{MOUNT}api/v1/users", json={"subject": "x"}, headers=same_origin(url)
        )
    assert (first.status_code, page.status_code, api.status_code) == (204, 200, 204)
    assert post.status_code == 503  # renewed, but a POST is not sent twice
    assert (
        post.json()["error"] == "The Qlik Cloud session had expired and was renewed; please retry"
    )
    assert len([r for r in live_tenant.requests if r.path == "/login/jwt-session"]) == 4


@pytest.mark.parametrize(
    "path",
    [
        "console/",
        "login",
        "login/jwt-session",
        "oauth/token",
        "api/v1/oauth-clients",
        "API/V1/Identity-Providers/x",
        "api/v1/web-integrations",
    ],
)
async def test_admin_and_sign_in_surfaces_are_not_relayed(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair, path: str
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (_url, client):
        response = await client.get(MOUNT + path)
    assert response.status_code == 403
    assert live_tenant.requests == []


async def test_logout_drops_the_users_cloud_credentials(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (url, client):
        await client.get(page_url())
        await client.post(f"{MOUNT}access-token", headers=same_origin(url))
        dropped = (await client.post("/logout")).json()["dropped"]
        await client.get(page_url())
    assert dropped == 2  # the cookie session and the token
    assert len([r for r in live_tenant.requests if r.path == "/login/jwt-session"]) == 2
