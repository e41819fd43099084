"""`OAuthTokenClient` against the simulated tenant over TLS: tokens, and each refusal as a typed
error that says what to fix without a secret in it (nor in the log)."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl

import httpx2 as httpx
import pytest

from qlik_sso_middleware.cloud import (
    CloudClientRejected,
    CloudGrantNotAllowed,
    CloudIdentity,
    CloudUserNotFound,
    OAuthClientSettings,
)
from qlik_sso_middleware.cloud._http import CloudAnswer, scrub
from qlik_sso_middleware.cloud.oauth import _expiry
from qlik_sso_middleware.errors import QlikAccessDenied, QlikError, QlikUnavailable
from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair

from .conftest import CLIENT, NO_IMPERSONATION, client_for, target_for

ALICE = CloudIdentity("auth0|alice", "Alice", "alice@example.com")


async def test_impersonation_token_works_as_the_user(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        token = await cloud.access_token(ALICE)
    assert token.subject == "auth0|alice"
    assert token.scope == "user_default"
    assert token.expires_at == pytest.approx(clock() + 21600, abs=1)
    assert token.is_fresh(clock(), 300)
    assert not token.is_fresh(clock() + 21400, 300)
    assert token.value not in repr(token)
    async with httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=tenant.ca_file)
    ) as client:
        me = await client.get(
            f"{tenant.tenant_url}/api/v1/users/me",
            headers={"Authorization": f"Bearer {token.value}"},
            follow_redirects=True,
        )
    assert me.json()["subject"] == "auth0|alice"
    request = next(r for r in tenant.requests if r.path == "/oauth/token")
    assert (request.client_id, request.user, request.grant_type) == (
        CLIENT.client_id,
        "auth0|alice",
        "urn:qlik:oauth:user-impersonation",
    )


@pytest.mark.parametrize(
    ("oauth", "identity", "error", "fix"),
    [
        (
            OAuthClientSettings(CLIENT.client_id, "wrong-secret"),
            ALICE,
            CloudClientRejected,
            "Administration > OAuth",
        ),
        (
            OAuthClientSettings("no-such-client", CLIENT.client_secret),
            ALICE,
            CloudClientRejected,
            "client_secret",
        ),
        (
            OAuthClientSettings(NO_IMPERSONATION.client_id, NO_IMPERSONATION.client_secret),
            ALICE,
            CloudGrantNotAllowed,
            "allow user impersonation",
        ),
        (
            OAuthClientSettings(
                CLIENT.client_id, CLIENT.client_secret, ("user_default", "admin_classic")
            ),
            ALICE,
            CloudGrantNotAllowed,
            "allowed scopes",
        ),
        (
            OAuthClientSettings(CLIENT.client_id, CLIENT.client_secret),
            CloudIdentity("auth0|nobody"),
            CloudUserNotFound,
            "create them first",
        ),
        (
            OAuthClientSettings(CLIENT.client_id, CLIENT.client_secret),
            CloudIdentity("auth0|dora"),
            QlikAccessDenied,
            "disabled",
        ),
    ],
)
async def test_refusals_are_typed_errors_with_the_fix(
    tenant: CloudSimulator,
    signing_key: SigningKeyPair,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    oauth: OAuthClientSettings,
    identity: CloudIdentity,
    error: type[QlikError],
    fix: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with client_for(target_for(tenant, signing_key, oauth=oauth), clock) as cloud:
        with pytest.raises(error) as refused:
            await cloud.access_token(identity)
    message = str(refused.value)
    assert type(refused.value) is error
    assert fix in message
    assert "HTTP 4" in message  # what Qlik said, for the log reader
    for secret in (CLIENT.client_secret, NO_IMPERSONATION.client_secret, "wrong-secret"):
        assert secret not in message
        assert secret not in caplog.text
    assert tenant.tokens_issued() == 0


async def test_the_browser_gets_403_for_an_unknown_user_and_503_for_setup_errors(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        with pytest.raises(CloudUserNotFound) as unknown:
            await cloud.access_token(CloudIdentity("auth0|nobody"))
    wrong = OAuthClientSettings(CLIENT.client_id, "wrong-secret")
    async with client_for(target_for(tenant, signing_key, oauth=wrong), clock) as cloud:
        with pytest.raises(CloudClientRejected) as setup:
            await cloud.access_token(ALICE)
    assert (unknown.value.status_code, unknown.value.ws_close_code) == (403, 1008)
    assert (setup.value.status_code, setup.value.ws_close_code) == (503, 1013)
    assert "auth0" not in setup.value.public_message and "wrong" not in setup.value.public_message


async def test_tenant_failures_and_transport_failures(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    tenant.faults.fail_next(503, path_contains="/oauth/token")
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        with pytest.raises(QlikUnavailable, match="failed POST /oauth/token"):
            await cloud.access_token(ALICE)
    async with client_for(target_for(tenant, signing_key, verify=True), clock) as cloud:
        with pytest.raises(QlikUnavailable, match="certificate this server does not trust"):
            await cloud.access_token(ALICE)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    closed = target_for(tenant, signing_key, url=f"https://127.0.0.1:{port}")
    async with client_for(closed, clock) as cloud:
        with pytest.raises(QlikUnavailable, match="unreachable for POST /oauth/token"):
            await cloud.access_token(ALICE)


def test_error_text_from_qlik_is_scrubbed() -> None:
    body = (
        b'{"errors": [{"code": "X", "title": "bad", "detail": "secret s3cr3t and '
        b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln and Bearer abc.def \\n" + b"y" * 500 + b'"}]}'
    )
    said = CloudAnswer(400, httpx.Headers(), body).qlik_said(["s3cr3t"])
    assert "s3cr3t" not in said
    assert "eyJ" not in said
    assert "abc.def" not in said
    assert "\n" not in said
    assert said.startswith("HTTP 400 X: bad (secret ******** and <jwt> and Bearer ********")
    assert len(said) <= 301
    assert scrub("plain") == "plain"


def test_expiry_from_expires_in_expires_at_or_a_safe_default() -> None:
    assert _expiry({"expires_in": 100}, 1000.0) == 1100.0
    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert _expiry({"expires_at": at.isoformat().replace("+00:00", "Z")}, 0.0) == at.timestamp()
    assert _expiry({"expires_at": "garbage", "expires_in": "10"}, 1000.0) == 1300.0
    assert _expiry({"expires_in": True}, 1000.0) == 1300.0


def test_retry_after_forms() -> None:
    def answer(status: int, value: str | None) -> CloudAnswer:
        headers = httpx.Headers({"retry-after": value} if value is not None else {})
        return CloudAnswer(status, headers, b"")

    assert answer(200, "5").retry_after() is None
    assert answer(429, "13").retry_after() == 13.0
    assert answer(429, None).retry_after() == 60.0
    assert answer(429, "soon").retry_after() == 60.0
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)).strftime(
        "%a, %d %b %Y %H:%M:%S GMT"
    )
    waited = answer(429, future).retry_after()
    assert waited is not None and 100 < waited <= 120


async def test_revoke_ends_the_token_at_the_tenant(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        token = await cloud.access_token(ALICE)
        assert tenant.token_valid(token.value)
        await cloud.revoke_token(token)
        await cloud.revoke_token(token.value)  # already gone: the tenant still answers 200
    assert not tenant.token_valid(token.value)
    assert tenant.tokens_revoked("auth0|alice") == 1
    revocations = [r for r in tenant.requests if r.path == "/oauth/revoke"]
    assert [(r.client_id, r.status) for r in revocations] == [(CLIENT.client_id, 200)] * 2


async def test_revoke_refusals_are_typed_and_name_neither_token_nor_secret(
    tenant: CloudSimulator,
    signing_key: SigningKeyPair,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        token = await cloud.access_token(ALICE)
    wrong = OAuthClientSettings(CLIENT.client_id, "wrong-secret")
    async with client_for(target_for(tenant, signing_key, oauth=wrong), clock) as cloud:
        with pytest.raises(CloudClientRejected, match="POST /oauth/revoke") as rejected:
            await cloud.revoke_token(token)
    tenant.faults.fail_next(503, path_contains="/oauth/revoke")
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        with pytest.raises(QlikUnavailable, match="failed POST /oauth/revoke") as failed:
            await cloud.revoke_token(token)
    assert rejected.value.status_code == 503  # the browser: nothing it can fix
    for exc in (rejected.value, failed.value):
        assert token.value not in str(exc)
        assert "wrong-secret" not in str(exc) and CLIENT.client_secret not in str(exc)
    assert token.value not in caplog.text and CLIENT.client_secret not in caplog.text
    assert tenant.token_valid(token.value)
