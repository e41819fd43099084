"""`/login/jwt-session` of the simulated tenant: every documented JWT rule, each with its error."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import CloudSimulator, JwtIdentityProvider, SigningKeyPair

from .conftest import (
    APP_ORIGIN,
    ISSUER,
    KID,
    WEB_INTEGRATION,
    claims,
    cookie_login,
    error_of,
    http,
    sign,
)

#: The claims the Login API specification lists (the test's own copy: it is the oracle).
REQUIRED = [
    "iss",
    "aud",
    "sub",
    "subType",
    "name",
    "email",
    "email_verified",
    "jti",
    "iat",
    "nbf",
    "exp",
]


async def _login(sim: CloudSimulator, token: str, **headers: str) -> Any:
    async with http(sim) as client:
        return await client.post(
            "/login/jwt-session", headers={"Authorization": f"Bearer {token}", **headers}
        )


async def test_a_valid_jwt_gives_the_session_cookies_and_creates_the_user(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    answer = await _login(tenant, sign(claims(clock), signing_key))
    assert answer.status_code == 200
    assert answer.json() == {}
    cookies = [c.split(";")[0].split("=")[0] for c in answer.headers.get_list("set-cookie")]
    assert cookies == ["eas.sid", "eas.sid.sig", "_csrfToken", "_csrfToken.sig"]
    assert all("Secure" in c and "HttpOnly" in c for c in answer.headers.get_list("set-cookie"))
    bob = tenant.user("auth0|bob")
    assert bob is not None
    assert (bob.name, bob.email, bob.groups, bob.status) == (
        "Bob",
        "bob@example.com",
        ["Sales", "EMEA"],
        "active",
    )
    assert tenant.requests[-1].user == "auth0|bob"
    assert tenant.requests[-1].header("authorization") == ["<redacted>"]


async def test_the_session_cookies_open_the_api_as_that_user(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    async with http(tenant) as client:
        cookie, _ = await cookie_login(client, clock, signing_key)
        me = await client.get("/api/v1/users/me", headers={"Cookie": cookie})
        user = await client.get(me.headers["location"], headers={"Cookie": cookie})
        forged = await client.get(
            "/api/v1/users/me", headers={"Cookie": cookie.replace("eas.sid.sig=", "eas.sid.sig=x")}
        )
    assert me.status_code == 301
    assert user.status_code == 200
    assert user.json()["subject"] == "auth0|bob"
    assert [g["name"] for g in user.json()["assignedGroups"]] == ["Sales", "EMEA"]
    assert forged.status_code == 401


@pytest.mark.parametrize("claim", REQUIRED)
async def test_every_required_claim_is_enforced(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair, claim: str
) -> None:
    answer = await _login(tenant, sign(claims(clock, **{claim: ...}), signing_key))
    assert answer.status_code == 400
    error = error_of(answer)
    assert error["code"] == "INTERNAL-TOKEN-1"
    assert error["title"] == "Invalid token request"
    assert error["detail"] == f"JWT_LOGIN_VALIDATIONS Missing required claim: {claim}"
    assert tenant.user("auth0|bob") is None


@pytest.mark.parametrize(
    ("overrides", "status", "detail"),
    [
        ({"subType": "group"}, 400, "subType must be user"),
        ({"email_verified": "true"}, 400, "email_verified must be a boolean"),
        ({"groups": "Sales"}, 400, "groups must be an array of strings"),
        ({"groups": ["Sales", 7]}, 400, "groups must be an array of strings"),
        ({"iat": "now"}, 400, "iat must be a NumericDate"),
        ({"exp": True}, 400, "exp must be a NumericDate"),
        ({"name": ""}, 400, "name must be a non-empty string"),
        ({"sub": 42}, 400, "sub must be a non-empty string"),
        ({"jti": ""}, 400, "jti must be a string or number"),
        ({"iss": "https://someone.else"}, 401, "Invalid issuer"),
        ({"aud": "qlik.api"}, 401, "Invalid audience"),
        ({"aud": ["other"]}, 401, "Invalid audience"),
    ],
)
async def test_claims_of_the_wrong_shape_or_value(
    tenant: CloudSimulator,
    clock: ManualClock,
    signing_key: SigningKeyPair,
    overrides: dict[str, Any],
    status: int,
    detail: str,
) -> None:
    answer = await _login(tenant, sign(claims(clock, **overrides), signing_key))
    assert answer.status_code == status
    assert detail in error_of(answer)["detail"]
    assert tenant.user("auth0|bob") is None


async def test_validity_window_may_be_one_hour_but_not_more(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    now = int(clock())
    too_long = await _login(tenant, sign(claims(clock, nbf=now, exp=now + 3601), signing_key))
    one_hour = await _login(tenant, sign(claims(clock, nbf=now, exp=now + 3600), signing_key))
    assert too_long.status_code == 400
    assert "more than 3600 seconds apart" in error_of(too_long)["detail"]
    assert one_hour.status_code == 200


async def test_an_audience_list_holding_qliks_audience_is_accepted(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    token = sign(claims(clock, aud=["qlik.api/login/jwt-session", "other"]), signing_key)
    assert (await _login(tenant, token)).status_code == 200


async def test_key_id_algorithm_and_signature(
    tenant: CloudSimulator,
    clock: ManualClock,
    signing_key: SigningKeyPair,
    other_key: SigningKeyPair,
) -> None:
    no_kid = await _login(tenant, sign(claims(clock), signing_key, kid=None))
    unknown_kid = await _login(tenant, sign(claims(clock), signing_key, kid="other-kid"))
    wrong_key = await _login(tenant, sign(claims(clock), other_key))
    hs256 = await _login(
        tenant, jwt.encode(claims(clock), "s" * 32, algorithm="HS256", headers={"kid": KID})
    )
    rs384 = await _login(tenant, sign(claims(clock), signing_key, alg="RS384"))
    assert (no_kid.status_code, error_of(no_kid)["detail"]) == (
        400,
        "JWT_LOGIN_VALIDATIONS Missing required header: kid",
    )
    assert (unknown_kid.status_code, error_of(unknown_kid)["detail"]) == (
        401,
        "No JWT identity provider has this key id (kid)",
    )
    assert (wrong_key.status_code, error_of(wrong_key)["detail"]) == (
        401,
        "Invalid signature for the identity provider's key",
    )
    assert (hs256.status_code, error_of(hs256)["detail"]) == (
        401,
        "Signing algorithm 'HS256' is not accepted",
    )
    assert rs384.status_code == 200


async def test_alg_none_and_a_tampered_payload_are_refused(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = f"{part({'alg': 'none', 'kid': KID})}.{part(claims(clock))}."
    header, _, signature = sign(claims(clock), signing_key).split(".")
    tampered = f"{header}.{part(claims(clock, sub='auth0|mallory'))}.{signature}"
    none_answer = await _login(tenant, unsigned)
    tampered_answer = await _login(tenant, tampered)
    malformed = await _login(tenant, "not-a-jwt")
    assert (none_answer.status_code, error_of(none_answer)["detail"]) == (
        401,
        "Signing algorithm 'none' is not accepted",
    )
    assert tampered_answer.status_code == 401
    assert "Invalid signature" in error_of(tampered_answer)["detail"]
    assert malformed.status_code == 400
    assert tenant.user("auth0|mallory") is None


async def test_nbf_exp_and_iat_follow_the_tenant_clock(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    now = int(clock())
    early = sign(claims(clock, iat=now, nbf=now + 30, exp=now + 90), signing_key)
    not_yet = await _login(tenant, early)
    future_iat = await _login(tenant, sign(claims(clock, iat=now + 30), signing_key))
    clock.advance(30)
    now_valid = await _login(tenant, early)
    late = sign(claims(clock), signing_key)
    clock.advance(60)
    expired = await _login(tenant, late)
    assert (not_yet.status_code, error_of(not_yet)["detail"]) == (401, "Token not yet valid (nbf)")
    assert (future_iat.status_code, error_of(future_iat)["detail"]) == (
        401,
        "Token issued in the future (iat)",
    )
    assert now_valid.status_code == 200  # the same token, once the clock reached nbf
    assert (expired.status_code, error_of(expired)["detail"]) == (401, "Token expired (exp)")


async def test_a_jti_is_good_once(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    token = sign(claims(clock, jti="only-once"), signing_key)
    first, replay = await _login(tenant, token), await _login(tenant, token)
    fresh = await _login(tenant, sign(claims(clock, jti="another"), signing_key))
    assert first.status_code == 200
    assert (replay.status_code, error_of(replay)["detail"]) == (401, "Token already used (jti)")
    assert fresh.status_code == 200


async def test_bearer_missing_and_disabled_user(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    async with http(tenant) as client:
        missing = await client.post("/login/jwt-session")
    disabled = await _login(tenant, sign(claims(clock, sub="auth0|dora"), signing_key))
    assert missing.status_code == 401
    assert disabled.status_code == 403
    assert "disabled" in error_of(disabled)["detail"]


async def test_a_browser_origin_needs_a_web_integration_listing_it(
    tenant: CloudSimulator, clock: ManualClock, signing_key: SigningKeyPair
) -> None:
    bare = await _login(tenant, sign(claims(clock), signing_key), Origin=APP_ORIGIN)
    listed = await _login(
        tenant,
        sign(claims(clock), signing_key),
        Origin=APP_ORIGIN,
        **{"qlik-web-integration-id": WEB_INTEGRATION},
    )
    unlisted = await _login(
        tenant,
        sign(claims(clock), signing_key),
        Origin="https://evil.example",
        **{"qlik-web-integration-id": WEB_INTEGRATION},
    )
    assert bare.status_code == 403
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert listed.headers["access-control-allow-credentials"] == "true"
    assert unlisted.status_code == 403


async def test_an_idp_configured_with_the_bare_public_key(
    signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    idp = JwtIdentityProvider(ISSUER, KID, signing_key.public_pem, algorithms=("RS256",))
    async with CloudSimulator(identity_providers=[idp], clock=clock) as sim:
        ok = await _login(sim, sign(claims(clock), signing_key))
        rs512 = await _login(sim, sign(claims(clock), signing_key, alg="RS512"))
    assert ok.status_code == 200
    assert rs512.status_code == 401
