"""`CloudUpstream`: what the proxy core is given for a tenant (paths, route), built once."""

from __future__ import annotations

import pytest

from qlik_sso_middleware import QlikIdentity
from qlik_sso_middleware.cloud import CloudTarget, JwtSigningSettings, OAuthClientSettings
from qlik_sso_middleware.cloud.upstream import CloudUpstream
from qlik_sso_middleware.errors import InvalidIdentity, RequestRefused
from qlik_sso_middleware.testing.cloud import SigningKeyPair

OAUTH = OAuthClientSettings("client-id", "very-secret-value")


def jwt(key: SigningKeyPair) -> JwtSigningSettings:
    return JwtSigningSettings(key.private_pem, key_id="kid", issuer="https://portal.example")


async def test_the_route_reaches_the_tenant_by_its_own_name(signing_key: SigningKeyPair) -> None:
    upstream = CloudUpstream(
        CloudTarget("https://acme.eu.qlikcloud.com", jwt=jwt(signing_key), mount_path="/qc/")
    )
    route = upstream.route
    assert (route.origin, route.host, route.port) == (
        "https://acme.eu.qlikcloud.com",
        "acme.eu.qlikcloud.com",
        443,
    )
    assert (route.base_path, route.mount_path, route.host_header) == (
        "/",
        "/qc/",
        "acme.eu.qlikcloud.com",
    )
    # The tenant's redirects come back to the app, under the mount.
    location = route.rewrite_location(
        b"https://acme.eu.qlikcloud.com/api/v1/users/abc", "app.example", "https"
    )
    assert location == b"https://app.example/qc/api/v1/users/abc"
    assert upstream.paths.check(b"/qc/single/") == "single/"
    with pytest.raises(RequestRefused):
        upstream.paths.check(b"/qc/console/")
    await upstream.aclose()


async def test_the_broker_alone_serves_only_its_path(signing_key: SigningKeyPair) -> None:
    upstream = CloudUpstream(CloudTarget("https://acme.eu.qlikcloud.com", oauth=OAUTH))
    assert upstream.paths.check(b"/qlik-cloud/access-token") == "access-token"
    assert upstream.is_token_endpoint("access-token")
    for path in (b"/qlik-cloud/single/", b"/qlik-cloud/api/v1/users/me", b"/qlik-cloud/"):
        with pytest.raises(RequestRefused) as refused:
            upstream.paths.check(path)
        assert refused.value.status_code == 403
    await upstream.aclose()


async def test_without_oauth_there_is_no_token_endpoint(signing_key: SigningKeyPair) -> None:
    upstream = CloudUpstream(CloudTarget("https://acme.eu.qlikcloud.com", jwt=jwt(signing_key)))
    assert not upstream.is_token_endpoint("access-token")
    await upstream.aclose()


async def test_identities_are_checked_through_the_mapping() -> None:
    upstream = CloudUpstream(CloudTarget("https://acme.eu.qlikcloud.com", oauth=OAUTH))
    upstream.check_identity(QlikIdentity("ACME", "alice"))
    assert upstream.cloud_identity(QlikIdentity("ACME", "alice")).subject == "ACME\\alice"
    with pytest.raises(InvalidIdentity):
        upstream.check_identity(QlikIdentity("ACME", "alice", {"email": "not an address"}))
    await upstream.aclose()
