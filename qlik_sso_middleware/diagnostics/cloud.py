"""The Qlik Cloud steps of `qlik-sso check` (`[cloud]`), each with the fix in the tenant's terms.

    cloud.key          the JWT signing key loads (RSA, >= 2048 bits); names its key id and issuer
    cloud.reach        the tenant answers over TLS (tenant_url, DNS, firewall, verify)
    cloud.admin        the admin client may look users up (provision_users)
    cloud.oauth.client the OAuth client id and secret are accepted
    cloud.oauth.grant  the client may impersonate users with the scopes asked for
    cloud.user         the test user exists (user lookup), or was provisioned
    cloud.jwt          the tenant's JWT identity provider accepts our login JWT (issuer, key id,
                       certificate, clock); cloud.csrf: the session's CSRF token
    cloud.origin       the cookie proxy's requests with the app's `Origin` and the configured
                       web integration id are accepted
    cloud.cors         (token broker) the tenant's CORS answer allows the app's origin: qlik-embed
                       and @qlik/api call the tenant from the browser with the token

Every call goes through the library's own `QlikCloudClient`, so the check meets exactly the
errors the middleware would. Nothing printed holds a token, a cookie, a JWT or a secret.
"""

from __future__ import annotations

import time

from ..cloud import CloudIdentity, CloudTarget, QlikCloudClient
from ..cloud.jwt_session import CloudCookieSession
from ..cloud.login_jwt import LoginJwtSigner
from ..config import QlikSSOConfig, build_cloud_target
from ..errors import (
    CertificateError,
    CloudClientRejected,
    CloudGrantNotAllowed,
    CloudJwtRejected,
    CloudUserNotFound,
    InvalidIdentity,
    QlikError,
)
from ..identity import QlikIdentity
from .report import Report

__all__ = ["check_cloud"]

_ADMIN = "Administration > OAuth"


async def check_cloud(config: QlikSSOConfig, report: Report) -> None:
    """Append the Qlik Cloud steps for `[cloud]` to `report` (nothing when it is not set)."""
    try:
        target = build_cloud_target(config)
    except CertificateError as exc:
        report.failed(
            "cloud.key",
            "Qlik Cloud: JWT signing key",
            exc.message,
            "cloud.jwt_private_key must be the PEM RSA key (2048 bits or more) whose certificate "
            "the tenant's JWT identity provider holds; set cloud.jwt_private_key_password if it "
            "is encrypted",
        )
        return
    if target is None:
        return
    if target.jwt is not None:
        signer = LoginJwtSigner(target.jwt)
        report.passed(
            "cloud.key",
            "Qlik Cloud: JWT signing key",
            f"RSA {signer.key_size} bits; key id {target.jwt.key_id!r}, issuer "
            f"{target.jwt.issuer!r}",
        )
    async with QlikCloudClient(target) as client:
        if not await _reach(report, client):
            report.skipped("cloud", "Qlik Cloud sign-in steps", "the tenant is not reachable")
            return
        identity = _test_identity(config, target, report)
        session = None
        if identity is not None and target.token_broker:
            await _impersonation(report, client, identity)
        if identity is not None and target.cookie_proxy:
            session = await _jwt_login(report, client, identity)
        await _origin(report, config, target, client, session)


async def _reach(report: Report, client: QlikCloudClient) -> bool:
    title = f"Qlik Cloud tenant {client.target.host}: reachable over TLS"
    try:
        answer = await client.http.request("GET", "/api/v1/csrf-token", "a reachability probe")
    except QlikError as exc:
        report.failed(
            "cloud.reach",
            title,
            exc.message,
            "check cloud.tenant_url (https://<tenant>.<region>.qlikcloud.com), this machine's "
            "DNS and firewall; behind a TLS-inspecting proxy set cloud.verify to its CA file",
        )
        return False
    if answer.status >= 500:
        report.failed(
            "cloud.reach", title, answer.qlik_said(), "the tenant failed: retry, or ask Qlik"
        )
        return False
    report.passed("cloud.reach", title, f"answered {answer.status}")
    return True


def _test_identity(
    config: QlikSSOConfig, target: CloudTarget, report: Report
) -> CloudIdentity | None:
    user, email = config.check.test_user, config.check.test_email
    if user is None:
        report.skipped(
            "cloud.user",
            "Qlik Cloud: test user",
            "set [check] test_user = 'DIRECTORY\\\\user' (and test_email for the JWT login)",
        )
        return None
    mapping = target.identity
    attributes = {mapping.email_attribute: email} if email else {}
    try:
        return mapping.to_cloud(QlikIdentity.parse(user, attributes))
    except InvalidIdentity as exc:
        report.failed(
            "cloud.user", "Qlik Cloud: test user", exc.message, "fix check.test_user / test_email"
        )
        return None


async def _impersonation(report: Report, client: QlikCloudClient, identity: CloudIdentity) -> None:
    oauth = client.target.oauth
    assert oauth is not None
    subject = identity.subject
    if client.provisioner is not None and not await _admin(report, client, subject):
        return
    try:
        token = await client.access_token(identity)
    except CloudClientRejected as exc:
        report.failed(
            "cloud.oauth.client",
            f"OAuth client {oauth.client_id!r}",
            exc.message,
            f"copy the client id and secret again from {_ADMIN} (the secret is shown once; "
            "create a new one if lost) into cloud.client_id / QLIK_SSO_CLOUD_CLIENT_SECRET",
        )
        return
    except CloudGrantNotAllowed as exc:
        report.passed("cloud.oauth.client", f"OAuth client {oauth.client_id!r}", "accepted")
        report.failed(
            "cloud.oauth.grant",
            "user impersonation and scopes",
            exc.message,
            f"in {_ADMIN}, edit the client: type Web (machine to machine), allow 'User "
            f"impersonation', and allow the scopes {oauth.scope!r} (or change cloud.scopes)",
        )
        return
    except CloudUserNotFound as exc:
        for id, title in _TOKEN_STEPS:
            report.passed(id, title.format(client=oauth.client_id), "accepted")
        report.failed(
            "cloud.user",
            f"user lookup: {subject}",
            exc.message,
            "create the user in the tenant, log it in once through the cookie proxy (JWT), or "
            "set cloud.provision_users = true with an admin client; compare cloud.subject with "
            "the subject the tenant shows (Administration > Users)",
        )
        return
    except QlikError as exc:
        report.failed(
            "cloud.oauth.grant",
            "user impersonation",
            exc.message,
            "check the user in Administration > Users (disabled, or too many tokens)",
        )
        return
    for id, title in _TOKEN_STEPS:
        report.passed(id, title.format(client=oauth.client_id), "accepted")
    hours = max(0.0, token.expires_at - time.time()) / 3600
    report.passed(
        "cloud.user",
        f"user lookup: {subject}",
        f"impersonated (token for {hours:.1f} h, scope {token.scope!r})",
    )


_TOKEN_STEPS = (
    ("cloud.oauth.client", "OAuth client {client!r}"),
    ("cloud.oauth.grant", "user impersonation and scopes"),
)


async def _admin(report: Report, client: QlikCloudClient, subject: str) -> bool:
    provisioner = client.provisioner
    assert provisioner is not None and client.target.admin_oauth is not None
    title = f"admin client {client.target.admin_oauth.client_id!r}: user look-up"
    try:
        found = await provisioner.find(subject)
    except QlikError as exc:
        report.failed(
            "cloud.admin",
            title,
            exc.message,
            f"in {_ADMIN}, give the admin client the client_credentials grant and an admin "
            "scope (admin_classic), and list that scope in cloud.admin_scopes",
        )
        return False
    report.passed("cloud.admin", title, "found" if found else "not there yet (will be created)")
    return True


def _jwt_fix(said: str, target: CloudTarget) -> str:
    """The fix for the cause Qlik's own words (`said`) point at."""
    jwt = target.jwt
    assert jwt is not None
    lowered = said.lower()
    place = "Administration > Identity provider > the JWT provider"
    if "kid" in lowered or "key id" in lowered:
        return f"{place}: its Key ID must be exactly {jwt.key_id!r} (cloud.jwt_key_id)"
    if "issuer" in lowered:
        return f"{place}: its Issuer must be exactly {jwt.issuer!r} (cloud.jwt_issuer)"
    if "signature" in lowered or "algorithm" in lowered:
        return (
            f"{place}: its certificate must be the public half of cloud.jwt_private_key "
            "(openssl req -new -x509 -key <key.pem> -out cert.pem, paste cert.pem)"
        )
    if any(word in lowered for word in ("nbf", "exp", "iat", "expired", "not yet")):
        return "this machine's clock is off: synchronise it (NTP)"
    return (
        f"compare {place} with cloud.jwt_issuer, cloud.jwt_key_id and the certificate of "
        "cloud.jwt_private_key, and check this machine's clock"
    )


async def _jwt_login(
    report: Report, client: QlikCloudClient, identity: CloudIdentity
) -> CloudCookieSession | None:
    title = f"JWT login of {identity.subject}"
    if not identity.email:
        report.skipped(
            "cloud.jwt", title, "set [check] test_email: Qlik's JWT login needs an e-mail"
        )
        return None
    try:
        session = await client.login(identity)
    except CloudJwtRejected as exc:
        fix = _jwt_fix(exc.said or exc.message, client.target)
        report.failed("cloud.jwt", title, exc.message, fix)
        return None
    except QlikError as exc:
        report.failed(
            "cloud.jwt",
            title,
            exc.message,
            "check the user in Administration > Users (a disabled user cannot log in)",
        )
        return None
    report.passed("cloud.jwt", title, "the tenant's JWT identity provider accepted it")
    token = await client.csrf_token(session)
    if token is None:
        report.failed(
            "cloud.csrf",
            "CSRF token of the session",
            "the tenant does not know the session it just made",
            "retry; if it persists, the tenant drops sessions (ask Qlik)",
        )
        return None
    report.passed("cloud.csrf", "CSRF token of the session", "issued")
    return session


async def _origin(
    report: Report,
    config: QlikSSOConfig,
    target: CloudTarget,
    client: QlikCloudClient,
    session: CloudCookieSession | None,
) -> None:
    origin = config.app.origin
    title = "web integration allows the app's origin"
    if origin is None:
        report.skipped("cloud.origin", title, "set app.origin to the app's public origin")
        return
    integration = target.web_integration_id
    fix = (
        f"Administration > Web: a web integration must list {origin} exactly (scheme, host, "
        "port; no wildcards)"
        + ("" if integration else ", and cloud.web_integration_id must name it")
    )
    if session is not None:
        headers = {"Cookie": session.cookie_header(), "Origin": origin}
        if integration:
            headers["qlik-web-integration-id"] = integration
        answer = await client.http.request(
            "GET", "/api/v1/csrf-token", "a cookie request from the app's origin", headers=headers
        )
        if answer.status == 403:
            report.failed("cloud.origin", f"{title} (cookie proxy)", answer.qlik_said(), fix)
        else:
            report.passed("cloud.origin", f"{title} (cookie proxy)", f"answered {answer.status}")
    if target.token_broker:
        answer = await client.http.request(
            "OPTIONS",
            "/api/v1/users/me",
            "a CORS preflight from the app's origin",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        allowed = answer.headers.get("access-control-allow-origin") == origin
        cors = f"{title} (browsers holding a token)"
        if answer.status >= 300 or not allowed:
            report.failed(
                "cloud.cors",
                cors,
                f"the tenant's CORS answer does not allow {origin} (HTTP {answer.status})",
                "qlik-embed and @qlik/api call the tenant from the browser with the token: " + fix,
            )
            return
        report.passed("cloud.cors", cors, "CORS allows it")
