"""`/oauth/token` of the simulated tenant: client credentials, impersonation, exchange, refusals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, CloudUser, OAuthClient

from .conftest import (
    CLIENT,
    NO_IMPERSONATION,
    client_credentials,
    error_of,
    http,
    impersonate,
    machine_token,
)


async def test_client_credentials_gives_a_machine_token_with_the_clients_scopes(
    tenant: CloudSimulator, clock: ManualClock
) -> None:
    async with http(tenant) as client:
        answer = await client_credentials(client)
    body = answer.json()
    assert answer.status_code == 200
    assert body["token_type"] == "bearer"
    assert body["scope"] == "admin_classic"
    assert body["expires_in"] == 21600
    expires_at = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
    assert expires_at == pytest.approx(clock() + 21600, abs=1)
    assert tenant.tokens_issued() == 0  # machine tokens are nobody's impersonation


async def test_impersonation_acts_as_the_user_and_is_counted_per_user(
    tenant: CloudSimulator,
) -> None:
    async with http(tenant) as client:
        answer = await impersonate(client)
        token = answer.json()["access_token"]
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}, follow_redirects=True
        )
        await impersonate(client)
    assert answer.status_code == 200
    assert me.json()["subject"] == "auth0|alice"
    assert tenant.tokens_issued("auth0|alice") == 2
    assert tenant.tokens_issued("auth0|bob") == 0
    record = next(r for r in tenant.requests if r.path == "/oauth/token")
    assert (record.client_id, record.user, record.grant_type) == (
        CLIENT.client_id,
        "auth0|alice",
        "urn:qlik:oauth:user-impersonation",
    )


@pytest.mark.parametrize(("field", "value"), [("userId", None), ("email", "ALICE@example.com")])
async def test_user_lookup_by_user_id_or_email(
    tenant: CloudSimulator, field: str, value: str | None
) -> None:
    alice = tenant.user("auth0|alice")
    assert alice is not None
    async with http(tenant) as client:
        answer = await impersonate(client, user_lookup={"field": field, "value": value or alice.id})
    assert answer.status_code == 200
    assert tenant.tokens_issued("auth0|alice") == 1


async def test_scope_inherits_the_client_or_narrows_to_allowed_scopes() -> None:
    rich = OAuthClient("rich", "rich-secret", scopes=("user_default", "offline_access"))
    async with (
        CloudSimulator(oauth_clients=[rich], users=[CloudUser("s")]) as sim,
        http(sim) as client,
    ):
        base = {
            "client_id": "rich",
            "client_secret": "rich-secret",
            "grant_type": "urn:qlik:oauth:user-impersonation",
        }
        lookup = {"user_lookup": {"field": "subject", "value": "s"}}
        inherited = await client.post("/oauth/token", json={**base, **lookup})
        narrowed = await client.post(
            "/oauth/token", json={**base, **lookup, "scope": "user_default"}
        )
    assert inherited.json()["scope"] == "user_default offline_access"
    assert narrowed.json()["scope"] == "user_default"


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_secret": None}, 401, "invalid_client"),
        ({"scope": "user_default admin_classic"}, 400, "invalid_scope"),
        ({"user_lookup": {"field": "subject", "value": "auth0|nobody"}}, 400, "invalid_grant"),
        ({"user_lookup": {"field": "subject", "value": "auth0|dora"}}, 403, "access_denied"),
        ({"user_lookup": {"field": "name", "value": "Alice"}}, 400, "invalid_request"),
        ({"user_lookup": None}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
    ],
)
async def test_impersonation_refusals(
    tenant: CloudSimulator, overrides: dict[str, Any], status: int, code: str
) -> None:
    async with http(tenant) as client:
        answer = await impersonate(client, **overrides)
    assert answer.status_code == status
    assert error_of(answer)["code"] == code
    assert error_of(answer)["status"] == str(status)
    assert tenant.tokens_issued() == 0


async def test_a_client_without_the_impersonation_grant_is_refused(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        answer = await impersonate(
            client,
            client_id=NO_IMPERSONATION.client_id,
            client_secret=NO_IMPERSONATION.client_secret,
        )
        machine = await machine_token(client, NO_IMPERSONATION)
    assert answer.status_code == 400
    assert error_of(answer)["code"] == "unauthorized_client"
    assert "urn:qlik:oauth:user-impersonation" in error_of(answer)["detail"]
    assert machine  # the same client may still use the grant it has


async def test_form_encoded_requests_are_accepted(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        answer = await client.post(
            "/oauth/token",
            data={
                "client_id": CLIENT.client_id,
                "client_secret": CLIENT.client_secret,
                "grant_type": "urn:qlik:oauth:user-impersonation",
                "user_lookup": '{"field": "subject", "value": "auth0|alice"}',
            },
        )
    assert answer.status_code == 200


async def test_tokens_expire_on_the_tenant_clock(
    tenant: CloudSimulator, clock: ManualClock
) -> None:
    async with http(tenant) as client:
        token = (await impersonate(client)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        before = await client.get("/api/v1/users/me", headers=headers)
        clock.advance(21600)
        after = await client.get("/api/v1/users/me", headers=headers)
    assert before.status_code == 301
    assert after.status_code == 401


async def test_a_user_may_hold_a_limited_number_of_tokens(clock: ManualClock) -> None:
    async with (
        CloudSimulator(
            oauth_clients=[CLIENT],
            users=[CloudUser("auth0|alice")],
            max_tokens_per_user=2,
            clock=clock,
        ) as sim,
        http(sim) as client,
    ):
        answers = [await impersonate(client) for _ in range(3)]
        clock.advance(21600)
        later = await impersonate(client)
    assert [a.status_code for a in answers] == [200, 200, 403]
    assert "maximum number of tokens" in error_of(answers[2])["detail"]
    assert later.status_code == 200  # the old ones expired


async def test_token_exchange_for_a_websocket_token(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        access = (await impersonate(client)).json()["access_token"]
        exchange = {
            "client_id": CLIENT.client_id,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": access,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "purpose": "websocket",
        }
        answer = await client.post("/oauth/token", json=exchange)
        bad_subject = await client.post("/oauth/token", json={**exchange, "subject_token": "nope"})
        bad_purpose = await client.post("/oauth/token", json={**exchange, "purpose": "admin"})
        ws_token = answer.json()["access_token"]
        as_bearer = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {ws_token}"}
        )
    assert answer.status_code == 200
    assert answer.json()["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert answer.json()["expires_in"] == 300
    assert bad_subject.status_code == 401
    assert bad_purpose.status_code == 400
    assert as_bearer.status_code == 401  # a WebSocket token opens no REST API
