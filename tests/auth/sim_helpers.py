"""Glue between the Qlik simulator and the QPS strategies in tests: settings and login context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx2 as httpx

from qlik_sso_middleware.auth._qps import QPSSettings
from qlik_sso_middleware.auth.base import LoginContext
from qlik_sso_middleware.testing import QlikSimulator
from qlik_sso_middleware.upstream import NoCookieJar


def qps_settings(sim: QlikSimulator, prefix: str, *, pfx: bool = False) -> QPSSettings:
    """Settings for `sim`'s mutual-TLS API with its generated certificates (PEM or PFX)."""
    files = sim.certificates
    assert files is not None
    assert sim.api_url is not None
    if pfx:
        return QPSSettings(
            api_url=sim.api_url,
            prefix=prefix,
            root=files.root,
            pfx=files.client_pfx,
            pfx_password=files.pfx_password,
        )
    return QPSSettings(
        api_url=sim.api_url,
        prefix=prefix,
        root=files.root,
        client_cert=files.client,
        client_key=files.client_key,
    )


@asynccontextmanager
async def login_context(
    sim: QlikSimulator,
    prefix: str,
    *,
    on_request: Callable[[httpx.Request], Awaitable[None]] | None = None,
) -> AsyncIterator[LoginContext]:
    """A `LoginContext` on `sim`'s proxy port with a jar-free client, like the middleware's.

    `on_request` runs before each request the strategy sends through the proxy port."""
    hooks = {"request": [on_request]} if on_request is not None else {}
    async with httpx.AsyncClient(
        cookies=NoCookieJar(), follow_redirects=False, trust_env=False, event_hooks=hooks
    ) as client:
        host = sim.proxy_url.split("://", 1)[1]
        yield LoginContext(
            client=client,
            proxy_url=sim.proxy_url,
            prefix=prefix,
            host=host,
            cookie_name=sim.virtual_proxies[0].base_cookie_name,
        )


async def whoami(sim: QlikSimulator, prefix: str, cookie: str) -> dict[str, object]:
    """`GET <prefix>/qps/user` through the proxy port with only `cookie` (a fresh browser)."""
    async with httpx.AsyncClient(trust_env=False) as browser:
        response = await browser.get(
            f"{sim.proxy_url}/{prefix}/qps/user", headers={"cookie": cookie}
        )
    body: dict[str, object] = response.json() if response.status_code == 200 else {}
    return body
