"""`QlikCloudClient` end to end on the simulated tenant: a token opens the engine; the rate-limit
queue keeps within Qlik's limit, honours Retry-After and gives up cleanly."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from websockets.asyncio.client import connect

from qlik_sso_middleware.cloud import CloudIdentity, CloudRateLimited, RateLimit
from qlik_sso_middleware.errors import ConfigurationError
from qlik_sso_middleware.testing import DEMO_APPS, ManualClock
from qlik_sso_middleware.testing.cloud import (
    CloudSimulator,
    CloudUser,
    JwtIdentityProvider,
    SigningKeyPair,
    TierLimit,
)
from tests.testing.cloud.conftest import ISSUER, KID
from tests.testing.conftest import recv_json, rpc

from .conftest import ADMIN, CLIENT, FakeSleep, client_for, target_for

SUBJECTS = [f"user-{n}" for n in range(17)]


async def test_an_impersonation_token_opens_an_app_on_the_engine(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        token = await cloud.access_token(CloudIdentity("auth0|alice"))
    app = DEMO_APPS[0]
    url = tenant.tenant_url.replace("https", "wss", 1) + f"/app/{app.id}"
    context = ssl.create_default_context(cafile=tenant.ca_file)
    async with connect(
        url, ssl=context, additional_headers={"Authorization": f"Bearer {token.value}"}
    ) as ws:
        assert (await recv_json(ws))["method"] == "OnConnected"
        await rpc(ws, 1, "OpenDoc", -1, app.id)
        answer = await rpc(ws, 2, "GetAppLayout", 1)
    assert answer["result"]["qLayout"]["qTitle"] == app.name


def _limited_tenant(
    signing_key: SigningKeyPair, clock: ManualClock, per_minute: int
) -> CloudSimulator:
    return CloudSimulator(
        identity_providers=[JwtIdentityProvider(ISSUER, KID, signing_key.public_pem)],
        oauth_clients=[CLIENT, ADMIN],
        users=[CloudUser(s) for s in SUBJECTS],
        tier2=TierLimit(per_minute, 60.0),
        clock=clock,
    )


def _token_times(sim: CloudSimulator) -> list[float]:
    return [r.time for r in sim.requests if r.path == "/oauth/token" and r.status == 200]


async def test_a_burst_is_queued_within_the_limit_never_answered_429(
    signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with _limited_tenant(signing_key, clock, 5) as sim:
        limit = RateLimit(5, 60.0, max_wait=3600.0)
        async with client_for(target_for(sim, signing_key, token_rate_limit=limit), clock) as cloud:
            tokens = await asyncio.gather(*(cloud.access_token(CloudIdentity(s)) for s in SUBJECTS))
    times = _token_times(sim)
    assert [t.subject for t in tokens] == SUBJECTS
    assert sim.rate_limited() == 0
    assert len(times) == 17
    assert max(sum(1 for t in times if s <= t < s + 60) for s in times) == 5
    # 17 tokens at 5 a minute take at least 3 minutes. (Here more: the manual clock jumps while
    # other calls are on the wire, and a slot is held until its answer is back.)
    assert 180.0 <= max(times) - min(times) <= 360.0


async def test_positive_control_without_the_queue_the_same_burst_meets_429s(
    signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with _limited_tenant(signing_key, clock, 5) as sim:
        unlimited = RateLimit(1000, 60.0, max_wait=3600.0)
        async with client_for(
            target_for(sim, signing_key, token_rate_limit=unlimited), clock
        ) as cloud:
            tokens = await asyncio.gather(*(cloud.access_token(CloudIdentity(s)) for s in SUBJECTS))
    assert len(tokens) == 17  # Retry-After still got everyone through
    assert sim.rate_limited() >= 12  # the 12 calls sent with the first 5 were refused


async def test_retry_after_is_honoured_before_the_next_call(
    signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    sleep = FakeSleep(clock)
    async with _limited_tenant(signing_key, clock, 2) as sim:
        async with client_for(target_for(sim, signing_key), clock, sleep) as cloud:
            for subject in SUBJECTS[:3]:
                await cloud.access_token(CloudIdentity(subject))
    refused = next(r for r in sim.requests if r.status == 429)
    assert sim.rate_limited() == 1
    assert sleep.slept == [60.0]
    after = [r.time for r in sim.requests if r.path == "/oauth/token" and r.time > refused.time]
    assert after and min(after) >= refused.time + 60.0


async def test_a_429_longer_than_max_wait_is_a_clean_503(
    signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with _limited_tenant(signing_key, clock, 1) as sim:
        impatient = RateLimit(100, 60.0, max_wait=5.0)
        async with client_for(
            target_for(sim, signing_key, token_rate_limit=impatient), clock
        ) as cloud:
            await cloud.access_token(CloudIdentity(SUBJECTS[0]))
            with pytest.raises(CloudRateLimited) as refused:
                await cloud.access_token(CloudIdentity(SUBJECTS[1]))
            with pytest.raises(CloudRateLimited):
                await cloud.access_token(CloudIdentity(SUBJECTS[2]))
    assert refused.value.retry_after == pytest.approx(60.0, abs=1)
    assert (refused.value.status_code, refused.value.ws_close_code) == (503, 1013)
    # One 429 reached the tenant; the third caller was refused by the queue, not by Qlik.
    assert sim.rate_limited() == 1
    assert len([r for r in sim.requests if r.path == "/oauth/token"]) == 2


async def test_modes_that_are_not_configured(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key, oauth=None), clock) as cloud:
        with pytest.raises(ConfigurationError, match="OAuth client"):
            await cloud.access_token(CloudIdentity("auth0|alice"))
    async with client_for(target_for(tenant, signing_key, jwt=None), clock) as cloud:
        with pytest.raises(ConfigurationError, match="JWT signing"):
            await cloud.login(CloudIdentity("s", email="s@x.com"))
