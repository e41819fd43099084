"""`/oauth/revoke` of the simulated tenant: a client revokes its own tokens (RFC 7009's rules)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx2 as httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from qlik_sso_middleware.testing import DEMO_APPS, ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, CloudUser, TierLimit

from .conftest import ADMIN, CLIENT, error_of, http, impersonate, machine_token

APP = DEMO_APPS[0]


async def revoke(
    client: httpx.AsyncClient, token: str | None, oauth: Any = CLIENT, **overrides: Any
) -> httpx.Response:
    body: dict[str, Any] = {
        "token": token,
        "token_type_hint": "access_token",
        "client_id": oauth.client_id,
        "client_secret": oauth.client_secret,
    }
    body.update(overrides)
    return await client.post("/oauth/revoke", json={k: v for k, v in body.items() if v is not ...})


async def me(client: httpx.AsyncClient, token: str) -> int:
    answer = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


async def socket_status(sim: CloudSimulator, token: str) -> int:
    """The engine WebSocket's answer to a browser-style `accessToken=` handshake (101: opened)."""
    url = sim.tenant_url.replace("https", "wss", 1) + f"/app/{APP.id}?accessToken={token}"
    try:
        async with connect(url, ssl=ssl.create_default_context(cafile=sim.ca_file)):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_a_revoked_token_is_refused_on_rest_and_on_the_engine_socket(
    tenant: CloudSimulator,
) -> None:
    async with http(tenant) as client:
        token = (await impersonate(client)).json()["access_token"]
        before = (await me(client, token), await socket_status(tenant, token))
        answer = await revoke(client, token)
        after = (await me(client, token), await socket_status(tenant, token))
        again = await revoke(client, token)  # already gone: still 200, not counted twice
    assert before == (301, 101)
    assert (answer.status_code, answer.content) == (200, b"")
    assert after == (401, 401)
    assert again.status_code == 200
    assert tenant.tokens_revoked("auth0|alice") == 1
    assert tenant.tokens_revoked() == 1
    assert not tenant.token_valid(token)
    record = next(r for r in tenant.requests if r.path == "/oauth/revoke")
    assert (record.client_id, record.user, record.status) == (CLIENT.client_id, "auth0|alice", 200)


async def test_a_form_encoded_revocation_works_too(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        token = (await impersonate(client)).json()["access_token"]
        answer = await client.post(
            "/oauth/revoke",
            data={
                "token": token,
                "client_id": CLIENT.client_id,
                "client_secret": CLIENT.client_secret,
            },
        )
        status = await me(client, token)
    assert (answer.status_code, status) == (200, 401)
    assert tenant.tokens_revoked("auth0|alice") == 1


async def test_an_unknown_token_answers_200_and_revokes_nothing(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        token = (await impersonate(client)).json()["access_token"]
        answer = await revoke(client, "no-such-token", token_type_hint=...)
        status = await me(client, token)
    assert (answer.status_code, answer.content) == (200, b"")
    assert status == 301
    assert tenant.tokens_revoked() == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_secret": "wrong"},
        {"client_secret": ...},
        {"client_id": "no-such-client"},
        {"client_id": ...},
    ],
    ids=["wrong-secret", "no-secret", "unknown-client", "no-client"],
)
async def test_bad_client_credentials_answer_401_and_the_token_stays(
    tenant: CloudSimulator, overrides: dict[str, Any]
) -> None:
    async with http(tenant) as client:
        token = (await impersonate(client)).json()["access_token"]
        answer = await revoke(client, token, **overrides)
        status = await me(client, token)
    assert answer.status_code == 401
    assert error_of(answer)["code"] == "invalid_client"
    assert CLIENT.client_secret not in answer.text
    assert status == 301
    assert tenant.tokens_revoked() == 0


@pytest.mark.parametrize("token", [..., "", 42], ids=["missing", "empty", "not-a-string"])
async def test_a_missing_token_answers_400(tenant: CloudSimulator, token: Any) -> None:
    async with http(tenant) as client:
        answer = await revoke(client, token)
    assert answer.status_code == 400
    assert error_of(answer)["code"] == "invalid_request"


async def test_a_client_cannot_revoke_another_clients_token(tenant: CloudSimulator) -> None:
    async with http(tenant) as client:
        alices = (await impersonate(client)).json()["access_token"]
        machine = await machine_token(client, ADMIN)
        foreign = await revoke(client, alices, ADMIN)  # RFC 7009 §2.1: 200, but not revoked
        still = await me(client, alices)
        own = await revoke(client, machine, ADMIN)
        lookup = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {machine}"})
    assert (foreign.status_code, still) == (200, 301)
    assert tenant.token_valid(alices)
    assert own.status_code == 200
    assert lookup.status_code == 401
    assert tenant.tokens_revoked() == 0  # a machine token is nobody's impersonation


async def test_revocations_share_the_clients_tier_two_window_with_token_requests(
    clock: ManualClock,
) -> None:
    async with (
        CloudSimulator(
            oauth_clients=[CLIENT, ADMIN],
            users=[CloudUser("auth0|alice")],
            tier2=TierLimit(2, 60.0),
            clock=clock,
        ) as sim,
        http(sim) as client,
    ):
        token = (await impersonate(client)).json()["access_token"]
        first = await revoke(client, "unknown")
        refused = await revoke(client, token)
        other = await revoke(client, "unknown", ADMIN)  # another client, another window
        valid = sim.token_valid(token)
    assert (first.status_code, refused.status_code, other.status_code) == (200, 429, 200)
    assert refused.headers["retry-after"]
    assert valid
    assert sim.rate_limited(2, f"client:{CLIENT.client_id}") == 1
