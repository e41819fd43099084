"""Fixtures for the Qlik Cloud simulator's tests: one tenant over real TLS, a manual clock, and
JWTs crafted with pyjwt (not with the library under test) so every rule can be broken on purpose."""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import jwt
import pytest

from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import (
    JWT_AUDIENCE,
    CloudSimulator,
    CloudUser,
    JwtIdentityProvider,
    OAuthClient,
    SigningKeyPair,
    TierLimit,
    WebIntegration,
    new_signing_key,
)
from qlik_sso_middleware.upstream import NoCookieJar

ISSUER = "https://portal.example"
KID = "portal-key-1"
APP_ORIGIN = "https://portal.example"
WEB_INTEGRATION = "wi-portal"
CLIENT = OAuthClient("embed-client", "embed-secret-123", scopes=("user_default",))
ADMIN = OAuthClient(
    "admin-client",
    "admin-secret-456",
    grant_types=("client_credentials",),
    scopes=("admin_classic",),
)
NO_IMPERSONATION = OAuthClient(
    "m2m-only", "m2m-secret-789", grant_types=("client_credentials",), scopes=("user_default",)
)


@pytest.fixture(scope="session")
def signing_key() -> SigningKeyPair:
    return new_signing_key()


@pytest.fixture(scope="session")
def other_key() -> SigningKeyPair:
    return new_signing_key()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(float(int(time.time())))


def alice() -> CloudUser:
    return CloudUser("auth0|alice", "Alice", "alice@example.com")


@pytest.fixture
async def tenant(signing_key: SigningKeyPair, clock: ManualClock) -> AsyncIterator[CloudSimulator]:
    async with CloudSimulator(
        identity_providers=[JwtIdentityProvider(ISSUER, KID, signing_key.certificate_pem)],
        oauth_clients=[CLIENT, ADMIN, NO_IMPERSONATION],
        users=[alice(), CloudUser("auth0|dora", "Dora", "dora@example.com", status="disabled")],
        web_integrations=[WebIntegration(WEB_INTEGRATION, (APP_ORIGIN,))],
        tier1=TierLimit(1000, 60.0),
        tier2=TierLimit(1000, 60.0),
        clock=clock,
    ) as sim:
        yield sim


def http(sim: CloudSimulator) -> httpx.AsyncClient:
    """A client that trusts the tenant's CA (real certificate verification) and keeps no cookies
    (each test sends the `Cookie` header it means to send)."""
    return httpx.AsyncClient(
        base_url=sim.tenant_url,
        verify=ssl.create_default_context(cafile=sim.ca_file),
        cookies=NoCookieJar(),
    )


def claims(clock: ManualClock, **overrides: Any) -> dict[str, Any]:
    """A valid payload; `overrides` replace claims, a value of `...` removes the claim."""
    now = int(clock())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": "auth0|bob",
        "subType": "user",
        "name": "Bob",
        "email": "bob@example.com",
        "email_verified": True,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "groups": ["Sales", "EMEA"],
    }
    for name, value in overrides.items():
        if value is ...:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload


def sign(
    payload: dict[str, Any], key: SigningKeyPair, *, kid: str | None = KID, alg: str = "RS256"
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    token: str = jwt.encode(payload, key.private_pem, algorithm=alg, headers=headers)
    return token


async def impersonate(
    client: httpx.AsyncClient, subject: str = "auth0|alice", **overrides: Any
) -> httpx.Response:
    body: dict[str, Any] = {
        "client_id": CLIENT.client_id,
        "client_secret": CLIENT.client_secret,
        "grant_type": "urn:qlik:oauth:user-impersonation",
        "user_lookup": {"field": "subject", "value": subject},
        "scope": "user_default",
    }
    body.update(overrides)
    return await client.post("/oauth/token", json=body)


async def client_credentials(
    client: httpx.AsyncClient, oauth: OAuthClient = ADMIN
) -> httpx.Response:
    body = {
        "client_id": oauth.client_id,
        "client_secret": oauth.client_secret,
        "grant_type": "client_credentials",
    }
    return await client.post("/oauth/token", json=body)


async def machine_token(client: httpx.AsyncClient, oauth: OAuthClient = ADMIN) -> str:
    answer = await client_credentials(client, oauth)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


async def cookie_login(
    client: httpx.AsyncClient, clock: ManualClock, key: SigningKeyPair
) -> tuple[str, str]:
    """Log in with a valid JWT: (the `Cookie` header value, the CSRF token from `_csrfToken`)."""
    token = sign(claims(clock), key)
    login = await client.post("/login/jwt-session", headers={"Authorization": f"Bearer {token}"})
    assert login.status_code == 200, login.text
    pairs = [c.split(";")[0] for c in login.headers.get_list("set-cookie")]
    csrf = next(p.split("=", 1)[1] for p in pairs if p.startswith("_csrfToken="))
    return "; ".join(pairs), csrf


def error_of(answer: httpx.Response) -> dict[str, Any]:
    errors: list[dict[str, Any]] = answer.json()["errors"]
    return errors[0]
