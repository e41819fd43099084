"""Fixtures for the Qlik Cloud client layer: the simulated tenant over real TLS, and targets for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from qlik_sso_middleware.cloud import (
    CloudTarget,
    JwtSigningSettings,
    OAuthClientSettings,
    QlikCloudClient,
    RateLimit,
)
from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import (
    CloudSimulator,
    CloudUser,
    JwtIdentityProvider,
    SigningKeyPair,
)
from tests.testing.cloud.conftest import (  # the simulator's own fixtures, shared
    ADMIN,
    CLIENT,
    ISSUER,
    KID,
    NO_IMPERSONATION,
    clock,
    other_key,
    signing_key,
    tenant,
)

__all__ = [
    "ADMIN",
    "CLIENT",
    "NO_IMPERSONATION",
    "FakeSleep",
    "client_for",
    "clock",
    "live_tenant",
    "other_key",
    "signing_key",
    "target_for",
    "tenant",
]


def target_for(
    sim: CloudSimulator, key: SigningKeyPair, *, url: str | None = None, **overrides: Any
) -> CloudTarget:
    """A target for `sim` (or `url`) with the impersonation client, the admin client, the JWT IdP."""
    options: dict[str, Any] = {
        "oauth": OAuthClientSettings(CLIENT.client_id, CLIENT.client_secret),
        "jwt": JwtSigningSettings(key.private_pem, key_id=KID, issuer=ISSUER),
        "admin_oauth": OAuthClientSettings(
            ADMIN.client_id, ADMIN.client_secret, ("admin_classic",)
        ),
        "verify": sim.ca_file,
        "token_rate_limit": RateLimit(100, 60.0, max_wait=3600.0),
    }
    options.update(overrides)
    return CloudTarget(url or sim.tenant_url, **options)


@dataclass
class FakeSleep:
    """`sleep` for the client's queues: moves the shared manual clock instead of waiting."""

    clock: ManualClock
    slept: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)  # like a real sleep, let whatever is ready run first
        self.clock.advance(seconds)


def client_for(
    target: CloudTarget, clock: ManualClock, sleep: FakeSleep | None = None
) -> QlikCloudClient:
    """A client on the same manual clock as the tenant (wall clock and queue clock alike)."""
    return QlikCloudClient(target, clock=clock, monotonic=clock, sleep=sleep or FakeSleep(clock))


@pytest.fixture
def fake_sleep(clock: ManualClock) -> FakeSleep:
    return FakeSleep(clock)


@pytest.fixture
async def live_tenant(signing_key: SigningKeyPair) -> AsyncIterator[CloudSimulator]:
    """A tenant on the real clock (the middleware signs JWTs with the real clock), with the
    users `ACME\\alice` and `ACME\\bob` and Qlik's published rate limits."""
    async with CloudSimulator(
        identity_providers=[JwtIdentityProvider(ISSUER, KID, signing_key.certificate_pem)],
        oauth_clients=[CLIENT, ADMIN, NO_IMPERSONATION],
        users=[
            CloudUser("ACME\\alice", "Alice", "alice@acme.example"),
            CloudUser("ACME\\bob", "Bob", "bob@acme.example"),
        ],
    ) as sim:
        yield sim
