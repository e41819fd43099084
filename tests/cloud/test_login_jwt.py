"""`LoginJwtSigner`: the login JWT carries exactly the claims and header Qlik documents."""

from __future__ import annotations

import subprocess
import sys

import jwt
import pytest

from qlik_sso_middleware.cloud import (
    JWT_AUDIENCE,
    CloudIdentity,
    JwtSigningSettings,
    LoginJwtSigner,
)
from qlik_sso_middleware.errors import InvalidIdentity
from qlik_sso_middleware.testing import ManualClock
from qlik_sso_middleware.testing.cloud import SigningKeyPair
from qlik_sso_middleware.testing.cloud.jwt_check import REQUIRED_CLAIMS

BOB = CloudIdentity("ACME\\bob", "Bob", "bob@acme.com", ["Sales"], email_verified=True)


def _signer(key: SigningKeyPair, clock: ManualClock, lifetime: float = 60.0) -> LoginJwtSigner:
    settings = JwtSigningSettings(
        key.private_pem, key_id="kid-1", issuer="https://portal", lifetime=lifetime
    )
    return LoginJwtSigner(settings, clock=clock)


def test_header_and_claims_are_exactly_qliks(
    signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    token = _signer(signing_key, clock).mint(BOB)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(
        token,
        signing_key.public_pem,
        algorithms=["RS256"],
        audience=JWT_AUDIENCE,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    now = int(clock())
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "kid-1"}
    assert set(claims) == {*REQUIRED_CLAIMS, "groups"}
    assert claims["iss"] == "https://portal"
    assert claims["aud"] == "qlik.api/login/jwt-session"
    assert (claims["sub"], claims["subType"], claims["name"], claims["email"]) == (
        "ACME\\bob",
        "user",
        "Bob",
        "bob@acme.com",
    )
    assert claims["email_verified"] is True
    assert claims["groups"] == ["Sales"]
    assert (
        claims["iat"] == claims["nbf"] == now - 5
    )  # back-dated for a tenant clock a little behind
    assert claims["exp"] == now + 60
    assert claims["exp"] - claims["nbf"] <= 3600


def test_every_jwt_has_its_own_jti_and_no_groups_claim_without_groups(
    signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    signer = _signer(signing_key, clock)
    plain = CloudIdentity("s", email="s@x.com")
    first, second = (
        jwt.decode(signer.mint(plain), options={"verify_signature": False}) for _ in range(2)
    )
    assert first["jti"] != second["jti"]
    assert len(first["jti"]) >= 32
    assert "groups" not in first
    assert first["name"] == "s"  # the subject stands in for a missing name
    assert first["email_verified"] is False


def test_the_longest_lifetime_stays_within_one_hour(
    signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    claims = jwt.decode(
        _signer(signing_key, clock, lifetime=3540).mint(BOB), options={"verify_signature": False}
    )
    assert claims["exp"] - claims["nbf"] == 3545


def test_a_user_without_email_cannot_be_signed_in_by_jwt(
    signing_key: SigningKeyPair, clock: ManualClock
) -> None:
    with pytest.raises(InvalidIdentity, match="e-mail"):
        _signer(signing_key, clock).mint(CloudIdentity("s"))


def test_repr_names_the_idp_not_the_key(signing_key: SigningKeyPair, clock: ManualClock) -> None:
    text = repr(_signer(signing_key, clock))
    assert "kid-1" in text
    assert "PRIVATE" not in text


def test_pyjwt_is_needed_only_for_jwt_login() -> None:
    code = (
        "import sys; sys.modules['jwt'] = None\n"
        "import qlik_sso_middleware.cloud as c\n"
        "from qlik_sso_middleware.errors import ConfigurationError\n"
        "from qlik_sso_middleware.testing.cloud import new_signing_key\n"
        "c.CloudTarget('https://t.example', oauth=c.OAuthClientSettings('i', 's'))\n"
        "try:\n"
        "    c.CloudTarget('https://t.example', jwt=c.JwtSigningSettings(new_signing_key().private_pem, 'k', 'i'))\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "pip install 'qlik-sso-middleware[cloud]'" in result.stdout
