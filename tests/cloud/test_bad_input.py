"""What the browser and the log see when the tenant refuses: a JWT it rejects, an OAuth client
without the impersonation grant, an unknown user, a 429. Clean 503/403 answers, the fix in the
log in Qlik's terms, and never a token, cookie, JWT, key or secret in either."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest

from qlik_sso_middleware import QlikSSO
from qlik_sso_middleware.cloud import JwtSigningSettings, OAuthClientSettings, RateLimit
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair, TierLimit
from tests.cloud.apps import TOKEN_URL, cloud_app, same_origin, signed_in, tenant_user
from tests.cloud.conftest import ADMIN, CLIENT, ISSUER, NO_IMPERSONATION, target_for
from tests.cloud.test_cookie_proxy import page_url
from tests.servers import serve

JWT_LIKE = re.compile(r"eyJ[\w-]+\.[\w-]+")


def warnings(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


async def test_a_jwt_the_tenant_rejects_is_a_503_and_the_log_says_what_to_compare(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    jwt = JwtSigningSettings(signing_key.private_pem, key_id="retired-key", issuer=ISSUER)
    app, _ = cloud_app(
        live_tenant, signing_key, target=target_for(live_tenant, signing_key, jwt=jwt)
    )
    async with signed_in(app, "alice") as (_url, client):
        page = await client.get(page_url(), headers={"accept": "text/html"})
        api = await client.get("/qlik-cloud/api/v1/users/me")
    assert (page.status_code, api.status_code) == (503, 503)
    assert "Qlik Cloud sign-in is not available" in page.text
    assert api.json() == {"error": "Qlik Cloud sign-in is not available", "status": 503}
    log = warnings(caplog)
    assert "refused the login JWT" in log and "key id 'retired-key'" in log
    assert not JWT_LIKE.search(log + page.text + api.text)


async def test_a_client_without_the_impersonation_grant_is_a_503_with_the_fix(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    oauth = OAuthClientSettings(NO_IMPERSONATION.client_id, NO_IMPERSONATION.client_secret)
    app, _ = cloud_app(
        live_tenant, signing_key, target=target_for(live_tenant, signing_key, oauth=oauth)
    )
    async with signed_in(app, "alice") as (url, client):
        response = await client.post(TOKEN_URL, headers=same_origin(url))
    assert response.status_code == 503
    assert response.json()["error"] == "Qlik Cloud sign-in is not available"
    assert "allow user impersonation" in warnings(caplog)
    assert NO_IMPERSONATION.client_secret not in warnings(caplog) + response.text


async def test_an_unknown_user_is_a_403_and_the_log_says_to_provision(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = cloud_app(
        live_tenant, signing_key, target=target_for(live_tenant, signing_key, admin_oauth=None)
    )
    async with signed_in(app, "zoe") as (url, client):
        response = await client.post(TOKEN_URL, headers=same_origin(url))
    assert response.status_code == 403
    assert response.json()["error"] == "This user has no Qlik Cloud account"
    assert "provision_users=True" in warnings(caplog)
    assert live_tenant.user("ACME\\zoe") is None


async def test_provisioning_creates_a_user_on_first_sight(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    target = target_for(live_tenant, signing_key, provision_users=True)
    app, _ = cloud_app(live_tenant, signing_key, target=target)
    async with signed_in(app, "zoe") as (url, client):
        first = await client.post(TOKEN_URL, headers=same_origin(url))
        again = await client.post(TOKEN_URL, headers=same_origin(url))
    assert (first.status_code, again.status_code) == (200, 200)
    user = live_tenant.user("ACME\\zoe")
    assert user is not None
    assert (user.name, user.email) == ("Zoe", "zoe@acme.example")
    creations = [
        r for r in live_tenant.requests if r.method == "POST" and r.path == "/api/v1/users"
    ]
    assert [r.client_id for r in creations] == [ADMIN.client_id]


@contextlib.asynccontextmanager
async def broker_behind_limits(
    key: SigningKeyPair, names: list[str], tier2: TierLimit, ours: RateLimit
) -> AsyncIterator[tuple[CloudSimulator, str]]:
    """A tenant allowing `tier2` token calls, the broker pacing itself to `ours`, served."""
    async with CloudSimulator(oauth_clients=[CLIENT], tier2=tier2) as sim:
        for name in names:
            sim.add_user(tenant_user(name))
        target = target_for(sim, key, jwt=None, admin_oauth=None, token_rate_limit=ours)
        app, _ = cloud_app(sim, key, target=target)
        async with serve(app) as url:
            yield sim, url


async def ask_as(url: str, name: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, cookies={"app_user": name}, timeout=60) as client:
        return await client.post(TOKEN_URL, headers=same_origin(url))


async def test_a_429_beyond_the_wait_is_a_503_with_retry_after_and_no_burst(
    signing_key: SigningKeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    # The tenant allows one token call in five minutes (another process used the rest).
    names = ["alice", "bob", "carol"]
    limits = (TierLimit(1, 300.0), RateLimit(100, 60.0, max_wait=2.0))
    async with broker_behind_limits(signing_key, names, *limits) as (sim, url):
        answers = {name: await ask_as(url, name) for name in names}
    assert [a.status_code for a in answers.values()] == [200, 503, 503]
    assert answers["bob"].json()["error"] == "Qlik Cloud is busy, try again shortly"
    assert int(answers["bob"].headers["retry-after"]) > 60  # the tenant's wait, not "1"
    # Bob met the 429; the queue then paused, so carol's call never went to the tenant.
    assert sim.rate_limited() == 1
    assert "rate limit" in warnings(caplog)


async def test_tokens_for_many_users_stay_within_the_rate_limit(
    signing_key: SigningKeyPair,
) -> None:
    # Two calls a second at the tenant and in our queue: six users at once queue, none meets a 429.
    names = [f"user{i}" for i in range(6)]
    limits = (TierLimit(2, 1.0), RateLimit(2, 1.0, max_wait=30.0))
    async with broker_behind_limits(signing_key, names, *limits) as (sim, url):
        answers = await asyncio.gather(*(ask_as(url, name) for name in names))
    assert [a.status_code for a in answers] == [200] * 6
    assert len({a.json()["access_token"] for a in answers}) == 6
    assert sim.rate_limited() == 0
    assert sum(sim.tokens_issued(f"ACME\\{n}") for n in names) == 6


async def test_nothing_secret_reaches_a_log_or_an_answer(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app, sso = cloud_app(live_tenant, signing_key)
    bad_secret = OAuthClientSettings(CLIENT.client_id, "wrong-secret-value")
    bad_app, _ = cloud_app(
        live_tenant, signing_key, target=target_for(live_tenant, signing_key, oauth=bad_secret)
    )
    bodies: list[str] = []
    async with serve(app) as url, serve(bad_app) as bad_url:
        for base in (url, bad_url):
            async with httpx.AsyncClient(base_url=base, cookies={"app_user": "alice"}) as client:
                token = await client.post(TOKEN_URL, headers=same_origin(base))
                page = await client.get(page_url())
                bodies += [token.text, page.text]
        async with httpx.AsyncClient(base_url=url, cookies={"app_user": "zoe"}) as client:
            bodies.append((await client.post(TOKEN_URL, headers=same_origin(url))).text)
        secrets = await _held_secrets(sso)
    tokens = [b.split('"access_token": "')[1].split('"')[0] for b in bodies if "access_token" in b]
    assert tokens and len(secrets) >= 2  # the flows worked: there was something to leak
    text = "\n".join(r.getMessage() for r in caplog.records) + "\n".join(bodies[1:])
    for secret in [
        *tokens,
        *secrets,
        CLIENT.client_secret,
        ADMIN.client_secret,
        "wrong-secret-value",
    ]:
        assert secret not in text
    assert "PRIVATE KEY" not in text
    assert not JWT_LIKE.search(text)


async def _held_secrets(sso: QlikSSO) -> list[str]:
    """The values the store holds for alice: her token and each of her session cookies."""
    values = []
    for key in await sso.store.keys_for_user("ACME\\alice"):
        record = await sso.store.get(key)
        assert record is not None
        values += [part.split("=", 1)[-1] for part in record.cookie_value.split("; ")]
    return values
