"""Qlik's own clients against a (simulated) Qlik Cloud tenant in Chromium, their access token from
the middleware's token broker: `@qlik/api` with `authType: "oauth2"` and `getAccessToken`, and
`<qlik-embed data-auth-type="Oauth2" data-get-access-token="getAccessToken">`.

The page is the app's (same origin as the broker); the clients then talk to the tenant directly:
`@qlik/api` loads the embed runtime from `<tenant>/qlik-embed/main.js` (the stand-in built from
@qlik/api's own modules, `embed_kit.py`), exchanges the token for a WebSocket token at
`/oauth/token` and opens `wss://<tenant>/app/<id>?accessToken=…`, every cross-origin call through
the tenant's CORS (a web integration lists the app's origin). Chromium trusts exactly the tenant's
generated certificate (`--ignore-certificate-errors-spki-list` with its key's hash), nothing else.
Needs `npm ci --prefix tests/js-embed`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Browser, BrowserContext, Page, Playwright
from starlette.requests import HTTPConnection

from qlik_sso_middleware import QlikIdentity, QlikSSOMiddleware
from qlik_sso_middleware.cloud import CloudTarget, OAuthClientSettings
from qlik_sso_middleware.testing import DEMO_APPS
from qlik_sso_middleware.testing.cloud import CloudSimulator, CloudUser, WebIntegration
from tests.cloud.conftest import CLIENT
from tests.servers import serve

from .conftest import LAUNCH_ARGS, VIEWPORT, require_chromium
from .embed_kit import EMBED_PAGES, embed_test_pages
from .flows import STATE_TIMEOUT_MS, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_APP = DEMO_APPS[0]
_BAR = next(o for o in _APP.objects if o.kind == "barchart")


@dataclass
class CloudSite:
    tenant: CloudSimulator
    url: str
    browser: Browser


def _user(conn: HTTPConnection) -> QlikIdentity | None:
    name = conn.cookies.get("app_user")
    return QlikIdentity("ACME", name) if name else None


def _spki_hash(certificate: Path) -> str:
    """What `--ignore-certificate-errors-spki-list` takes: base64 SHA-256 of the public key."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest_asyncio.fixture(loop_scope="package", scope="module")
async def site(playwright: Playwright, embed_kit: Path) -> AsyncIterator[CloudSite]:
    users = [CloudUser(f"ACME\\{n}", n.title(), f"{n}@acme.example") for n in ("alice", "bob")]
    async with CloudSimulator(
        oauth_clients=[CLIENT], users=users, embed_runtime=embed_kit / "runtime"
    ) as tenant:
        assert tenant.certificates is not None
        target = CloudTarget(
            tenant.tenant_url,
            oauth=OAuthClientSettings(CLIENT.client_id, CLIENT.client_secret),
            verify=tenant.ca_file,
        )
        app = QlikSSOMiddleware(embed_test_pages(embed_kit), target=target, resolver=_user)
        trust = f"--ignore-certificate-errors-spki-list={_spki_hash(tenant.certificates.server)}"
        chromium = await playwright.chromium.launch(
            executable_path=require_chromium(), headless=True, args=[*LAUNCH_ARGS, trust]
        )
        try:
            async with serve(app) as url:
                tenant.add_web_integration(WebIntegration("wi-app", (url,)))
                yield CloudSite(tenant, url, chromium)
        finally:
            await chromium.close()


async def _signed_in(site: CloudSite, user: str) -> BrowserContext:
    context = await site.browser.new_context(viewport=VIEWPORT)
    await context.add_cookies([{"name": "app_user", "value": user, "url": site.url}])
    return context


async def _settled(page: Page, url: str) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    return errors


async def test_qlik_api_oauth2_opens_an_app_as_the_user_with_the_brokers_token(
    site: CloudSite, tmp_path: Path
) -> None:
    query = urlencode(
        {"host": site.tenant.tenant_url, "client": CLIENT.client_id, "app": _APP.id, "obj": _BAR.id}
    )
    results: dict[str, dict[str, Any]] = {}
    for user in ("alice", "bob"):
        context = await _signed_in(site, user)
        try:
            page = await context.new_page()
            errors = await _settled(page, f"{site.url}{EMBED_PAGES}/cloud_api.html?{query}")
            await page.locator("body:not([data-state=loading])").wait_for(timeout=STATE_TIMEOUT_MS)
            status = await page.locator("#status").inner_text()
            assert await page.locator("body").get_attribute("data-state") == "connected", status
            assert errors == []
            results[user] = json.loads(await page.locator("#result").text_content() or "{}")
            assert await page.evaluate("() => window.brokerCalls") >= 1
            await screenshot(page, tmp_path, f"qlik-api-oauth2-{user}")
        finally:
            await context.close()
    for user, result in results.items():
        assert result["user"] == f"UserDirectory=; UserId=ACME\\{user}"
        assert result["title"] == _APP.name
        assert result["objectId"] == _BAR.id
        assert [row[0] for row in result["matrix"]] == [str(row[0]) for row in _BAR.rows]
        # One impersonation per user (the broker's cache), made by our server, not the browser.
        assert site.tenant.tokens_issued(f"ACME\\{user}") == 1
    exchanges = [r for r in site.tenant.requests if r.grant_type and "exchange" in r.grant_type]
    sockets = [r for r in site.tenant.requests if r.websocket and r.status == 101]
    assert {r.user for r in exchanges} >= {"ACME\\alice", "ACME\\bob"}
    assert {r.user for r in sockets} >= {"ACME\\alice", "ACME\\bob"}
    assert all("accessToken=" in r.query for r in sockets)


async def test_qlik_embed_oauth2_draws_a_chart_as_the_user(site: CloudSite, tmp_path: Path) -> None:
    elements = {"analytics/chart": {"app-id": _APP.id, "object-id": _BAR.id}}
    query = urlencode(
        [
            ("ui", "analytics/chart"),
            ("attrs", json.dumps(elements)),
            ("host", site.tenant.tenant_url),
            ("auth", "Oauth2"),
            ("client", CLIENT.client_id),
            ("token", "getAccessToken"),
        ]
    )
    before = len(site.tenant.requests)
    context = await _signed_in(site, "alice")
    try:
        page = await context.new_page()
        errors = await _settled(page, f"{site.url}{EMBED_PAGES}/qlik-embed?{query}")
        embed = page.locator(".qlik-embed-standin")
        await page.wait_for_function(
            "() => [...document.querySelectorAll('.qlik-embed-standin')]"
            ".some((e) => e.dataset.state === 'rendered' || e.dataset.state === 'error')",
            timeout=STATE_TIMEOUT_MS,
        )
        state = await embed.get_attribute("data-state")
        assert state == "rendered", await embed.get_attribute("data-error")
        assert errors == []
        cells = await page.locator(".qlik-embed-standin tbody tr td:first-child").all_inner_texts()
        assert cells == [str(row[0]) for row in _BAR.rows]
        assert await page.evaluate("() => window.brokerCalls") >= 1
        await screenshot(page, tmp_path, "qlik-embed-oauth2-alice")
    finally:
        await context.close()
    sockets = [r for r in site.tenant.requests[before:] if r.websocket and r.status == 101]
    assert [r.user for r in sockets] and {r.user for r in sockets} == {"ACME\\alice"}
