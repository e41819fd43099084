"""Users API, `csrf-token`, CSRF on cookie requests and web integrations of the simulated tenant."""

from __future__ import annotations

import json

import pytest

from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair

from .conftest import (
    APP_ORIGIN,
    NO_IMPERSONATION,
    WEB_INTEGRATION,
    cookie_login,
    error_of,
    http,
    impersonate,
    machine_token,
)


async def test_csrf_token_endpoint(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    async with http(tenant) as client:
        cookie, csrf = await cookie_login(client, clock, signing_key)
        with_cookie = await client.get("/api/v1/csrf-token", headers={"Cookie": cookie})
        anonymous = await client.get("/api/v1/csrf-token")
        token = (await impersonate(client)).json()["access_token"]
        with_bearer = await client.get(
            "/api/v1/csrf-token", headers={"Authorization": f"Bearer {token}"}
        )
    assert with_cookie.status_code == 204
    assert with_cookie.headers["qlik-csrf-token"] == csrf
    assert anonymous.status_code == 401
    assert with_bearer.status_code == 204
    assert with_bearer.headers["qlik-csrf-token"]


async def test_cookie_requests_that_modify_need_the_csrf_token(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    async with http(tenant) as client:
        cookie, csrf = await cookie_login(client, clock, signing_key)
        without = await client.post(
            "/api/v1/users", headers={"Cookie": cookie}, json={"subject": "x"}
        )
        wrong = await client.post(
            "/api/v1/users",
            headers={"Cookie": cookie, "qlik-csrf-token": "nope"},
            json={"subject": "x"},
        )
        right = await client.post(
            "/api/v1/users",
            headers={"Cookie": cookie, "qlik-csrf-token": csrf},
            json={"subject": "x"},
        )
    assert (without.status_code, error_of(without)["code"]) == (403, "CSRF-1")
    assert (wrong.status_code, error_of(wrong)["code"]) == (403, "CSRF-1")
    # Past the CSRF check, a user cookie still may not create users.
    assert (right.status_code, error_of(right)["code"]) == (403, "USERS-3")


async def test_cookie_requests_from_a_browser_origin_need_a_web_integration(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    async with http(tenant) as client:
        cookie, _ = await cookie_login(client, clock, signing_key)
        bare = await client.get(
            "/api/v1/users/me", headers={"Cookie": cookie, "Origin": APP_ORIGIN}
        )
        by_header = await client.get(
            "/api/v1/users/me",
            headers={
                "Cookie": cookie,
                "Origin": APP_ORIGIN,
                "qlik-web-integration-id": WEB_INTEGRATION,
            },
        )
        by_query = await client.get(
            f"/api/v1/users/me?qlik-web-integration-id={WEB_INTEGRATION}",
            headers={"Cookie": cookie, "Origin": APP_ORIGIN},
        )
        own_origin = await client.get(
            "/api/v1/users/me", headers={"Cookie": cookie, "Origin": tenant.tenant_url}
        )
        token = (await impersonate(client)).json()["access_token"]
        bearer = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}", "Origin": APP_ORIGIN}
        )
    assert (bare.status_code, error_of(bare)["code"]) == (403, "CORS-1")
    assert by_header.status_code == 301
    assert by_header.headers["access-control-allow-origin"] == APP_ORIGIN
    assert by_query.status_code == 301
    assert own_origin.status_code == 301
    assert bearer.status_code == 301  # bearer tokens are not ambient: no integration needed


async def test_cors_preflight(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        listed = await client.options("/api/v1/users/me", headers={"Origin": APP_ORIGIN})
        unlisted = await client.options(
            "/api/v1/users/me", headers={"Origin": "https://evil.example"}
        )
    assert listed.status_code == 204
    assert listed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "qlik-csrf-token" in listed.headers["access-control-allow-headers"]
    assert unlisted.status_code == 403
    assert "access-control-allow-origin" not in unlisted.headers


async def test_admin_machine_token_looks_users_up_and_creates_them(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        headers = {"Authorization": f"Bearer {await machine_token(client)}"}
        found = await client.get(
            "/api/v1/users", params={"filter": 'subject eq "auth0|alice"'}, headers=headers
        )
        missing = await client.get(
            "/api/v1/users", params={"filter": 'subject eq "ACME\\\\carol"'}, headers=headers
        )
        created = await client.post(
            "/api/v1/users",
            headers=headers,
            json={"subject": "ACME\\carol", "name": "Carol", "email": "carol@example.com"},
        )
        carol = json.dumps("ACME\\carol")
        again = await client.get(
            "/api/v1/users", params={"filter": f"subject eq {carol}"}, headers=headers
        )
        duplicate = await client.post(
            "/api/v1/users", headers=headers, json={"subject": "ACME\\carol"}
        )
        no_subject = await client.post("/api/v1/users", headers=headers, json={"name": "x"})
        too_big = await client.post(
            "/api/v1/users", headers=headers, json={"subject": "y", "name": "n" * 600_000}
        )
        bad_filter = await client.get(
            "/api/v1/users", params={"filter": 'name co "a"'}, headers=headers
        )
        impersonated = await impersonate(client, "ACME\\carol")
    assert [u["subject"] for u in found.json()["data"]] == ["auth0|alice"]
    assert missing.json()["data"] == []
    assert created.status_code == 201
    assert created.json()["status"] == "invited"
    assert [u["id"] for u in again.json()["data"]] == [created.json()["id"]]
    assert duplicate.status_code == 409
    assert no_subject.status_code == 400
    assert too_big.status_code == 413
    assert bad_filter.status_code == 400
    assert impersonated.status_code == 200  # a provisioned user can be impersonated


@pytest.mark.parametrize("who", ["impersonated user", "machine without admin scope"])
async def test_the_users_list_needs_an_admin_machine(tenant: CloudSimulator, who: str) -> None:
    async with http(tenant) as client:
        if who == "impersonated user":
            token = (await impersonate(client)).json()["access_token"]
        else:
            token = await machine_token(client, NO_IMPERSONATION)
        headers = {"Authorization": f"Bearer {token}"}
        listing = await client.get("/api/v1/users", headers=headers)
        creating = await client.post("/api/v1/users", headers=headers, json={"subject": "z"})
    assert listing.status_code == 403
    assert creating.status_code == 403
    assert tenant.user("z") is None


async def test_a_user_sees_itself_but_not_others(tenant: CloudSimulator) -> None:
    dora = tenant.user("auth0|dora")
    alice = tenant.user("auth0|alice")
    assert dora is not None and alice is not None
    async with http(tenant) as client:
        headers = {"Authorization": f"Bearer {(await impersonate(client)).json()['access_token']}"}
        own = await client.get(f"/api/v1/users/{alice.id}", headers=headers)
        other = await client.get(f"/api/v1/users/{dora.id}", headers=headers)
        machine = {"Authorization": f"Bearer {await machine_token(client)}"}
        me_machine = await client.get("/api/v1/users/me", headers=machine)
        unknown = await client.get("/api/v1/users/nope", headers=machine)
        bad_bearer = await client.get("/api/v1/users/me", headers={"Authorization": "Basic abc"})
    assert own.status_code == 200
    assert other.status_code == 403
    assert me_machine.status_code == 401
    assert unknown.status_code == 404
    assert bad_bearer.status_code == 401
