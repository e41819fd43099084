"""`CloudSessions`: Qlik Cloud tokens and cookie sessions per user, shared through the store.

Two instances on one Redis stand for two app processes (each with its own in-process
single-flight, so only the store's lock keeps them to one call); the tenant and the client share
a manual clock, so token expiry is tested without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from qlik_sso_middleware import QlikIdentity
from qlik_sso_middleware.cloud import CloudIdentityMapping, CloudTarget
from qlik_sso_middleware.cloud.upstream import CloudUpstream
from qlik_sso_middleware.sessions.cloud import ACCESS_TOKEN, COOKIES, CloudSessions
from qlik_sso_middleware.sessions.manager import SessionManager
from qlik_sso_middleware.stores.base import SessionStore
from qlik_sso_middleware.stores.memory import MemorySessionStore
from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair
from tests.cloud.conftest import client_for, target_for
from tests.stores.store_harness import RedisHarness

# The `tenant` fixture's users are `auth0|alice` (active) and `auth0|dora` (disabled).
MAPPING = CloudIdentityMapping(subject="{user_directory}|{user_id}")
ALICE = QlikIdentity("auth0", "alice", {"name": "Alice", "email": "alice@example.com"})


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisHarness]:
    harness = RedisHarness(redis_url)
    yield harness
    await harness.close()


def sessions_for(
    tenant: CloudSimulator,
    key: SigningKeyPair,
    clock: ManualClock,
    store: SessionStore,
    **overrides: object,
) -> CloudSessions:
    """One app process's view: its own client, manager and single-flight, on `store`."""
    target: CloudTarget = target_for(tenant, key, identity=MAPPING, **overrides)
    upstream = CloudUpstream(target, client=client_for(target, clock))
    return CloudSessions(upstream, SessionManager(store), clock=clock)


async def test_two_processes_on_one_redis_ask_the_tenant_once(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock, redis: RedisHarness
) -> None:
    first = sessions_for(tenant, signing_key, clock, redis.make())
    second = sessions_for(tenant, signing_key, clock, redis.make())
    tokens = await asyncio.gather(
        *(s.access_token(ALICE) for _ in range(10) for s in (first, second))
    )
    cookies = await asyncio.gather(*(s.obtain(ALICE) for _ in range(10) for s in (first, second)))
    assert len({t.value for t in tokens}) == 1
    assert tenant.tokens_issued("auth0|alice") == 1
    assert len({c.cookie_value for c in cookies}) == 1
    assert len([r for r in tenant.requests if r.path == "/login/jwt-session"]) == 1
    assert {c.cookie_name for c in cookies} == {COOKIES}


async def test_tokens_and_cookies_are_sealed_at_rest_and_keys_name_no_user(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock, redis: RedisHarness
) -> None:
    sessions = sessions_for(tenant, signing_key, clock, redis.make())
    token = await sessions.access_token(ALICE)
    cookie = await sessions.obtain(ALICE)
    raw = b""
    for name in await redis.keys():
        assert b"alice" not in name
        value = await redis.raw.get(name) if await redis.raw.type(name) == b"string" else None
        raw += value or b"".join((await redis.raw.hgetall(name)).values())
    assert raw  # something was stored
    assert token.value.encode() not in raw
    for part in cookie.cookie_value.split("; "):
        assert part.split("=", 1)[1].encode() not in raw
    assert b"alice" not in raw


async def test_the_store_keeps_a_token_as_long_as_it_may_be_handed_out(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock, redis: RedisHarness
) -> None:
    sessions = sessions_for(tenant, signing_key, clock, redis.make(), token_margin=300.0)
    token = await sessions.access_token(ALICE)
    ttls = [await redis.raw.pttl(name) for name in await redis.keys()]
    # The token's own six hours less the margin, not the 25-minute session TTL.
    assert token.expires_at - clock() == 21_600
    assert any(21_290_000 <= ttl <= 21_300_000 for ttl in ttls)


async def test_a_token_is_replaced_once_it_has_less_than_the_margin_left(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    store = MemorySessionStore(clock=clock)
    sessions = sessions_for(tenant, signing_key, clock, store, token_margin=300.0)
    first = await sessions.access_token(ALICE)
    clock.advance(21_600 - 301)  # 301 s left: still handed out
    assert (await sessions.access_token(ALICE)).value == first.value
    clock.advance(2)  # 299 s left: too close
    second = await sessions.access_token(ALICE)
    assert second.value != first.value
    assert second.expires_at - clock() == 21_600
    assert tenant.tokens_issued("auth0|alice") == 2
    record = await store.get(next(iter(await store.keys_for_user(ALICE.user_key()))))
    assert record is not None
    assert (record.cookie_name, record.expires_at) == (ACCESS_TOKEN, second.expires_at)


async def test_a_cookie_session_the_tenant_forgot_is_renewed_by_the_csrf_probe(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    sessions = sessions_for(tenant, signing_key, clock, MemorySessionStore(clock=clock))
    session = await sessions.obtain(ALICE)
    assert tenant.end_sessions("auth0|alice") == 1
    renewed, token = await sessions.csrf_token(ALICE, session)
    assert renewed.cookie_value != session.cookie_value
    assert token is not None
    assert await sessions.current(ALICE) == renewed
    # The token is remembered for the session: no second probe.
    probes = len([r for r in tenant.requests if r.path == "/api/v1/csrf-token"])
    assert await sessions.csrf_token(ALICE, renewed) == (renewed, token)
    assert len([r for r in tenant.requests if r.path == "/api/v1/csrf-token"]) == probes


async def test_new_attributes_make_a_new_cookie_session_but_not_a_new_token(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    sessions = sessions_for(tenant, signing_key, clock, MemorySessionStore(clock=clock))
    sales = QlikIdentity("auth0", "alice", {**dict(ALICE.attributes), "group": "Sales"})
    first = (await sessions.obtain(ALICE), await sessions.access_token(ALICE))
    second = (await sessions.obtain(sales), await sessions.access_token(sales))
    # The tenant reads groups at a JWT login only; impersonation cannot change them anyway.
    assert first[0].cookie_value != second[0].cookie_value
    assert first[1].value == second[1].value
    user = tenant.user("auth0|alice")
    assert user is not None and user.groups == ["Sales"]


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_logout_in_any_process_revokes_the_stored_token_at_the_tenant(
    tenant: CloudSimulator,
    signing_key: SigningKeyPair,
    clock: ManualClock,
    redis_url: str,
    store: str,
) -> None:
    harness = RedisHarness(redis_url) if store == "redis" else None
    try:
        shared: SessionStore = harness.make() if harness else MemorySessionStore()
        first = sessions_for(tenant, signing_key, clock, shared)
        second = sessions_for(tenant, signing_key, clock, harness.make() if harness else shared)
        token = await first.access_token(ALICE)
        await first.obtain(ALICE)
        dropped = await second.logout(ALICE, "app.example")  # the token sealed at rest in Redis
        fresh = await first.access_token(ALICE)
    finally:
        if harness is not None:
            await harness.close()
    assert dropped == 2  # the token and the cookie session, as before revocation existed
    assert not tenant.token_valid(token.value)
    assert tenant.tokens_revoked("auth0|alice") == 1
    assert fresh.value != token.value and tenant.token_valid(fresh.value)
