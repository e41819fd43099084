"""The token broker end to end: the app's user asks the middleware, the middleware asks the
simulated tenant for an impersonation token (real uvicorn, real TLS to the tenant, real httpx)."""

from __future__ import annotations

import asyncio
import logging
import ssl

import httpx2 as httpx
import pytest
import websockets

from qlik_sso_middleware.cloud import CloudTarget, OAuthClientSettings
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair
from tests.cloud.apps import TOKEN_URL, cloud_app, same_origin, signed_in, tenant_user
from tests.cloud.conftest import CLIENT, target_for
from tests.servers import serve


def broker_only(sim: CloudSimulator, key: SigningKeyPair, **overrides: object) -> CloudTarget:
    """A target with the token broker alone (no JWT settings: no cookie proxy)."""
    return target_for(sim, key, jwt=None, admin_oauth=None, **overrides)


async def ask(client: httpx.AsyncClient, url: str, **headers: str) -> httpx.Response:
    return await client.post(TOKEN_URL, headers={**same_origin(url), **headers})


def tenant_client(sim: CloudSimulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=sim.tenant_url, verify=ssl.create_default_context(cafile=sim.ca_file)
    )


async def test_the_user_gets_a_token_that_acts_as_them_at_the_tenant(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (url, client):
        response = await ask(client, url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 21_000 < body["expires_in"] <= 21_600  # Qlik's six hours
    assert body["expires_at"].endswith("Z")
    assert body["scope"] == "user_default"
    # The tenant issued it to our client, impersonating alice; the browser never met the secret.
    grants = [r for r in live_tenant.requests if r.path == "/oauth/token"]
    assert [(r.client_id, r.user) for r in grants] == [(CLIENT.client_id, "ACME\\alice")]
    assert CLIENT.client_secret not in response.text
    async with tenant_client(live_tenant) as tenant:
        me = await tenant.get(
            "/api/v1/users/me", headers={"authorization": f"Bearer {body['access_token']}"}
        )
        user = await tenant.get(
            me.headers["location"], headers={"authorization": f"Bearer {body['access_token']}"}
        )
    assert me.status_code == 301
    assert user.json()["subject"] == "ACME\\alice"


async def test_a_token_is_cached_per_user_and_fetched_once_for_concurrent_requests(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with serve(app) as url:
        clients = {
            user: httpx.AsyncClient(base_url=url, cookies={"app_user": user}, timeout=60)
            for user in ("alice", "bob")
        }
        try:
            answers = await asyncio.gather(
                *(ask(clients[user], url) for _ in range(25) for user in ("alice", "bob"))
            )
            later = await ask(clients["alice"], url)
        finally:
            for client in clients.values():
                await client.aclose()
    assert {a.status_code for a in answers} == {200}
    tokens = {a.json()["access_token"] for a in answers}
    assert len(tokens) == 2  # one per user, shared by every request of that user
    assert later.json()["access_token"] in tokens
    assert live_tenant.tokens_issued("ACME\\alice") == 1
    assert live_tenant.tokens_issued("ACME\\bob") == 1


@pytest.mark.parametrize(("margin", "issued"), [(60.0, 1), (900.0, 3)])
async def test_a_token_is_handed_out_only_while_it_has_the_margin_left(
    signing_key: SigningKeyPair, margin: float, issued: int
) -> None:
    # Tokens live 600 s here: a 60 s margin keeps the first; a 900 s margin never can.
    async with CloudSimulator(oauth_clients=[CLIENT], users=[], token_lifetime=600.0) as sim:
        sim.add_user(tenant_user("alice"))
        app, _ = cloud_app(
            sim, signing_key, target=broker_only(sim, signing_key, token_margin=margin)
        )
        async with (
            serve(app) as url,
            httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
        ):
            answers = [await ask(client, url) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert sim.tokens_issued("ACME\\alice") == issued
    assert len({a.json()["access_token"] for a in answers}) == issued


async def test_the_broker_alone_serves_nothing_else_under_its_mount(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key, target=broker_only(live_tenant, signing_key))
    async with signed_in(app, "alice") as (url, client):
        page = await client.get("/qlik-cloud/single/?appid=x")
        api = await client.get("/qlik-cloud/api/v1/users/me")
        token = await ask(client, url)
    assert (page.status_code, api.status_code, token.status_code) == (403, 403, 200)
    assert [r.path for r in live_tenant.requests] == ["/oauth/token"]


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "null", "sec-fetch-site": "cross-site"},
    ],
    ids=["foreign-origin", "foreign-origin-only", "cross-site", "same-site", "sandboxed"],
)
async def test_a_cross_site_request_never_gets_a_token(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair, headers: dict[str, str]
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (_url, client):
        response = await client.post(TOKEN_URL, headers=headers)
    assert response.status_code == 403
    assert "access_token" not in response.text
    assert live_tenant.requests == []


async def test_only_post_is_answered_and_never_as_a_websocket(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (url, client):
        get = await client.get(TOKEN_URL, headers={"sec-fetch-site": "same-origin"})
        ws_url = url.replace("http", "ws") + TOKEN_URL
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                ws_url,
                origin=websockets.Origin(url),
                additional_headers={"cookie": "app_user=alice"},
            ):
                pass
    assert get.status_code == 405
    assert refused.value.response.status_code == 400
    assert live_tenant.requests == []


async def test_a_server_side_client_without_browser_headers_gets_the_token(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    # No Origin, no Sec-Fetch-Site: no browser sent it, so no other site's page made it.
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (_url, client):
        response = await client.post(TOKEN_URL)
    assert response.status_code == 200
    assert response.json()["access_token"]


async def test_an_allowed_origin_may_ask(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    portal = "https://portal.acme.example"
    app, _ = cloud_app(live_tenant, signing_key, allowed_origins=[portal])
    async with signed_in(app, "alice") as (_url, client):
        listed = await client.post(
            TOKEN_URL, headers={"origin": portal, "sec-fetch-site": "same-site"}
        )
        other = await client.post(
            TOKEN_URL, headers={"origin": "https://x.acme.example", "sec-fetch-site": "same-site"}
        )
    assert (listed.status_code, other.status_code) == (200, 403)


async def test_nobody_logged_in_gets_401_and_the_tenant_hears_nothing(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, None) as (url, client):
        response = await ask(client, url)
    assert response.status_code == 401
    assert response.json() == {"error": "Not logged in", "status": 401}
    assert live_tenant.requests == []


async def test_the_client_secret_comes_from_the_server_never_from_the_browser(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    # A broken secret on the server: the browser cannot fix it by sending one of its own.
    target = target_for(
        live_tenant, signing_key, oauth=OAuthClientSettings(CLIENT.client_id, "not-the-secret")
    )
    app, _ = cloud_app(live_tenant, signing_key, target=target)
    async with signed_in(app, "alice") as (url, client):
        response = await client.post(
            TOKEN_URL,
            headers=same_origin(url),
            json={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
        )
    assert response.status_code == 503
    assert response.json() == {"error": "Qlik Cloud sign-in is not available", "status": 503}


async def test_logout_revokes_the_users_token_at_the_tenant_and_the_next_ask_gets_a_new_one(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    app, _ = cloud_app(live_tenant, signing_key)
    async with signed_in(app, "alice") as (url, client):
        first = (await ask(client, url)).json()["access_token"]
        bobs = (await ask(client, url, cookie="app_user=bob")).json()["access_token"]
        logout = await client.post("/logout")
        async with tenant_client(live_tenant) as tenant:
            refused = await tenant.get(
                "/api/v1/users/me", headers={"authorization": f"Bearer {first}"}
            )
            bob_still = await tenant.get(
                "/api/v1/users/me", headers={"authorization": f"Bearer {bobs}"}
            )
        again = await ask(client, url)
    assert logout.status_code == 200
    assert logout.json() == {"dropped": 1}
    assert refused.status_code == 401  # the browser's copy no longer works at Qlik
    assert bob_still.status_code == 301  # only the user who logged out
    assert again.status_code == 200
    assert again.json()["access_token"] not in (first, bobs)
    assert live_tenant.tokens_revoked("ACME\\alice") == 1
    assert live_tenant.tokens_revoked("ACME\\bob") == 0
    assert live_tenant.tokens_issued("ACME\\alice") == 2
    revocations = [r for r in live_tenant.requests if r.path == "/oauth/revoke"]
    assert [(r.client_id, r.user, r.status) for r in revocations] == [
        (CLIENT.client_id, "ACME\\alice", 200)
    ]


@pytest.mark.parametrize("failure", ["503", "rate-limited", "unreachable"])
async def test_logout_succeeds_when_the_tenant_cannot_revoke_and_logs_a_warning_without_the_token(
    live_tenant: CloudSimulator,
    signing_key: SigningKeyPair,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    # A 429 pauses the client's queue (60 s without Retry-After): the logout waits `timeout`.
    target = target_for(live_tenant, signing_key, timeout=1.0)
    app, _ = cloud_app(live_tenant, signing_key, target=target)
    async with signed_in(app, "alice") as (url, client):
        token = (await ask(client, url)).json()["access_token"]
        if failure == "503":
            live_tenant.faults.fail_next(503, path_contains="/oauth/revoke")
        elif failure == "rate-limited":
            live_tenant.faults.fail_next(429, path_contains="/oauth/revoke")
        else:
            await live_tenant.stop()
        logout = await client.post("/logout")
    assert logout.status_code == 200
    assert logout.json() == {"dropped": 1}
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "revoked" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "alice" in warnings[0].getMessage()
    assert token not in caplog.text
    assert CLIENT.client_secret not in caplog.text
    assert live_tenant.tokens_revoked() == 0
