"""The simulated tenant's rate limits: per tier and principal, 429 with Retry-After, a sliding window."""

from __future__ import annotations

from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, CloudUser, TierLimit

from .conftest import ADMIN, CLIENT, http, impersonate, machine_token


async def test_tier_two_answers_429_with_retry_after_per_client(clock: ManualClock) -> None:
    async with (
        CloudSimulator(
            oauth_clients=[CLIENT, ADMIN],
            users=[CloudUser("auth0|alice")],
            tier2=TierLimit(3, 60.0),
            clock=clock,
        ) as sim,
        http(sim) as client,
    ):
        first = [await impersonate(client)]
        clock.advance(10)
        first.append(await impersonate(client))
        clock.advance(10)
        first.append(await impersonate(client))
        clock.advance(10)
        refused = await impersonate(client)
        other_client = await machine_token(client, ADMIN)  # its own principal, its own window
        clock.advance(29)
        still_refused = await impersonate(client)
        clock.advance(1)
        admitted = await impersonate(client)
    assert [a.status_code for a in first] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert refused.json() == {
        "errors": [
            {
                "code": "HTTP-429",
                "title": "API rate limit reached.",
                "detail": "You need to wait 30 seconds until limit is lifted.",
            }
        ]
    }
    assert other_client
    assert still_refused.status_code == 429
    assert still_refused.headers["retry-after"] == "1"
    assert admitted.status_code == 200
    assert sim.rate_limited(tier=2, principal=f"client:{CLIENT.client_id}") == 2
    assert sim.rate_limited(tier=2, principal=f"client:{ADMIN.client_id}") == 0
    assert sim.tokens_issued("auth0|alice") == 4


async def test_tier_one_reads_have_their_own_window(clock: ManualClock) -> None:
    async with (
        CloudSimulator(
            oauth_clients=[CLIENT],
            users=[CloudUser("auth0|alice")],
            tier1=TierLimit(2, 60.0),
            tier2=TierLimit(1, 60.0),
            clock=clock,
        ) as sim,
        http(sim) as client,
    ):
        token = (await impersonate(client)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        reads = [await client.get("/api/v1/users/me", headers=headers) for _ in range(3)]
    assert [r.status_code for r in reads] == [301, 301, 429]
    assert sim.rate_limited(tier=1) == 1
    assert sim.rate_limited(tier=2) == 0
