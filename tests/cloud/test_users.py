"""`UserProvisioner` through `QlikCloudClient.access_token`: users created on first sight, once."""

from __future__ import annotations

import asyncio

import pytest

from qlik_sso_middleware.cloud import (
    CloudGrantNotAllowed,
    CloudIdentity,
    CloudUserNotFound,
    OAuthClientSettings,
)
from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair

from .conftest import NO_IMPERSONATION, client_for, target_for

CAROL = CloudIdentity('ACME\\carol "the admin"', "Carol", "carol@acme.com")


def _calls(sim: CloudSimulator, method: str, path: str) -> int:
    return sum(1 for r in sim.requests if r.method == method and r.path == path)


async def test_a_new_user_is_created_then_impersonated(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key, provision_users=True), clock) as cloud:
        token = await cloud.access_token(CAROL)
        again = await cloud.access_token(CAROL)
    carol = tenant.user(CAROL.subject)
    assert carol is not None
    assert (carol.name, carol.email, carol.status) == ("Carol", "carol@acme.com", "invited")
    assert token.subject == again.subject == CAROL.subject
    # First sight: one look-up and one creation; the second token needed neither.
    assert _calls(tenant, "GET", "/api/v1/users") == 1
    assert _calls(tenant, "POST", "/api/v1/users") == 1
    assert tenant.tokens_issued(CAROL.subject) == 2


async def test_an_existing_user_is_found_not_created(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key, provision_users=True), clock) as cloud:
        await cloud.access_token(CloudIdentity("auth0|alice"))
    assert _calls(tenant, "GET", "/api/v1/users") == 1
    assert _calls(tenant, "POST", "/api/v1/users") == 0


async def test_concurrent_first_requests_provision_once(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key, provision_users=True), clock) as cloud:
        tokens = await asyncio.gather(*(cloud.access_token(CAROL) for _ in range(10)))
        others = await asyncio.gather(
            *(cloud.access_token(CloudIdentity(f"user-{n}")) for n in range(3))
        )
    assert len({t.value for t in tokens}) == 10
    assert len(others) == 3
    assert _calls(tenant, "POST", "/api/v1/users") == 4  # carol once, and the three others
    assert _calls(tenant, "GET", "/api/v1/users") == 4
    # One machine token served every look-up and creation.
    machine = [r for r in tenant.requests if r.grant_type == "client_credentials"]
    assert len(machine) == 1


async def test_the_machine_token_is_renewed_before_it_expires(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key, provision_users=True), clock) as cloud:
        await cloud.access_token(CloudIdentity("first"))
        clock.advance(21600 - 30)  # within a minute of its expiry
        await cloud.access_token(CloudIdentity("second"))
    assert len([r for r in tenant.requests if r.grant_type == "client_credentials"]) == 2


async def test_a_user_deleted_in_the_tenant_is_created_again_once(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key, provision_users=True), clock) as cloud:
        await cloud.access_token(CAROL)
        tenant.remove_user(CAROL.subject)
        token = await cloud.access_token(CAROL)
    assert token.subject == CAROL.subject
    assert _calls(tenant, "POST", "/api/v1/users") == 2


async def test_without_provisioning_an_unknown_user_is_an_error(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        with pytest.raises(CloudUserNotFound):
            await cloud.access_token(CAROL)
    assert _calls(tenant, "GET", "/api/v1/users") == 0
    assert tenant.user(CAROL.subject) is None


async def test_an_admin_client_without_an_admin_scope(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    weak = OAuthClientSettings(NO_IMPERSONATION.client_id, NO_IMPERSONATION.client_secret)
    async with client_for(
        target_for(tenant, signing_key, provision_users=True, admin_oauth=weak), clock
    ) as cloud:
        with pytest.raises(CloudGrantNotAllowed, match="admin_classic") as refused:
            await cloud.access_token(CAROL)
    assert NO_IMPERSONATION.client_secret not in str(refused.value)
    assert tenant.user(CAROL.subject) is None


async def test_create_finds_a_user_made_meanwhile(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key, provision_users=True), clock) as cloud:
        assert cloud.provisioner is not None
        record = await cloud.provisioner.create(CloudIdentity("auth0|alice"))  # 409 -> look-up
    alice = tenant.user("auth0|alice")
    assert alice is not None
    assert record.id == alice.id
