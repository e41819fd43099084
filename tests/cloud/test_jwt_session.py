"""`JwtSessionClient` through `QlikCloudClient.login`: the cookie mode against the simulated tenant."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from websockets.asyncio.client import connect

from qlik_sso_middleware.cloud import CloudIdentity, CloudJwtRejected, JwtSigningSettings
from qlik_sso_middleware.errors import QlikAccessDenied
from qlik_sso_middleware.testing import DEMO_APPS, ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair
from tests.testing.conftest import recv_json, rpc

from .conftest import client_for, target_for

BOB = CloudIdentity("ACME\\bob", "Bob", "bob@acme.com", ["Sales", "EMEA"], email_verified=True)


async def test_login_holds_the_session_server_side_and_opens_the_engine(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        session = await cloud.login(BOB)
        csrf = await cloud.csrf_token(session)
    assert session.subject == "ACME\\bob"
    assert session.cookie("eas.sid")
    assert csrf == session.cookie("_csrfToken")
    assert "eas.sid" not in repr(session) and str(session.cookie("eas.sid")) not in repr(session)
    bob = tenant.user("ACME\\bob")
    assert bob is not None and bob.groups == ["Sales", "EMEA"]
    url = (
        tenant.tenant_url.replace("https", "wss", 1)
        + f"/app/{DEMO_APPS[0].id}?qlik-csrf-token={csrf}"
    )
    context = ssl.create_default_context(cafile=tenant.ca_file)
    async with connect(
        url, ssl=context, additional_headers={"Cookie": session.cookie_header()}
    ) as ws:
        greeting = await recv_json(ws)
        user = await rpc(ws, 1, "GetAuthenticatedUser", -1)
    assert greeting["method"] == "OnConnected"
    assert user["result"]["qReturn"] == "UserDirectory=; UserId=ACME\\bob"


async def test_every_login_mints_a_fresh_jwt(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        first, second = await cloud.login(BOB), await cloud.login(BOB)
    assert first.cookie("eas.sid") != second.cookie("eas.sid")  # no "jti already used"


async def test_a_tenant_clock_a_little_behind_still_accepts(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    ahead = ManualClock(clock() + 4)  # this server's clock runs 4 s ahead of the tenant's
    async with client_for(target_for(tenant, signing_key), ahead) as cloud:
        assert await cloud.login(BOB)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"key_id": "other-kid"}, "key id (kid)"),
        ({"issuer": "https://other.example"}, "Invalid issuer"),
        ({"use_other_key": True}, "Invalid signature"),
    ],
)
async def test_a_refused_jwt_names_the_idp_settings_to_compare(
    tenant: CloudSimulator,
    signing_key: SigningKeyPair,
    other_key: SigningKeyPair,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    said: str,
) -> None:
    key = other_key if change.pop("use_other_key", False) else signing_key
    settings = {
        "private_key": key.private_pem,
        "key_id": "portal-key-1",
        "issuer": "https://portal.example",
        **change,
    }
    async with client_for(
        target_for(tenant, signing_key, jwt=JwtSigningSettings(**settings)), clock
    ) as cloud:
        with pytest.raises(CloudJwtRejected) as refused:
            await cloud.login(BOB)
    message = str(refused.value)
    assert said in message
    assert f"key id {settings['key_id']!r}" in message and "NTP" in message
    assert "eyJ" not in message and "eyJ" not in caplog.text
    assert refused.value.status == 401


async def test_a_disabled_user_and_an_ended_session(
    tenant: CloudSimulator, signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    async with client_for(target_for(tenant, signing_key), clock) as cloud:
        with pytest.raises(QlikAccessDenied, match="disabled"):
            await cloud.login(CloudIdentity("auth0|dora", "Dora", "dora@example.com"))
        session = await cloud.login(BOB)
        clock.advance(1800)  # the tenant's idle timeout
        assert await cloud.csrf_token(session) is None
