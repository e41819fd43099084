"""Secrets: representative flows at DEBUG logging; no cookie value, CSRF token, ticket, xrfkey,
key or password may appear in any log record (every logger, not only ours) or error body.

The simulator's own loggers (`qlik_sso_middleware.testing`) are left out: it plays Qlik.
"""

from __future__ import annotations

import json
import logging

import httpx2 as httpx
import pytest
from websockets.asyncio.client import connect

from qlik_sso_middleware import Timeouts
from qlik_sso_middleware.auth.session_api import SessionApiAuth
from qlik_sso_middleware.auth.ticket import TicketAuth
from qlik_sso_middleware.errors import StoreUnavailable
from qlik_sso_middleware.stores.redis import RedisSessionStore, Sealer
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..apps import build_app
from ..auth.sim_helpers import qps_settings
from ..redis_server import RedisServer, _command, require_redis_server
from ..servers import serve
from .helpers import assert_no_secret, log_texts, simulator_secrets

pytestmark = pytest.mark.asyncio

REDIS_PASSWORD = "redis-pw-Zq81xK"
PFX_PASSWORD = "sim-pfx-pw-Yt55"


async def browse(url: str, sim: QlikSimulator, bodies: list[str]) -> None:
    """A representative session: login, pages, the engine socket, renewal, refusals, logout."""
    async with httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}, timeout=30) as app:
        bodies.append((await app.get("/sso/qps/user")).text)
        bodies.append((await app.get("/sso/hub/")).text)
        bodies.append((await app.get("/sso/qrs/about")).text)
        bodies.append((await app.post("/sso/hub/", headers={"origin": "https://evil"})).text)
        bodies.append((await app.get("/sso/%2e%2e/x", headers={"accept": "text/html"})).text)
        for renewal in (False, True):
            if renewal:
                sim.restart()
            async with connect(
                "ws" + url[4:] + f"/sso/app/{DEMO_APPS[0].id}",
                origin=url,  # type: ignore[arg-type]
                additional_headers={"cookie": "app_user=alice"},
            ) as ws:
                bodies.append(str(await ws.recv()))
                bodies.append(str(await ws.recv()))
        sim.restart()
        bodies.append((await app.get("/sso/hub/")).text)
        sim.faults.fail_next(500)
        bodies.append((await app.get("/sso/hub/")).text)
        bodies.append((await app.post("/logout", headers={"origin": url})).text)
    async with httpx.AsyncClient(base_url=url) as anonymous:
        bodies.append((await anonymous.get("/sso/hub/")).text)


async def test_header_auth_flow_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        app, _ = build_app(sim, target={"timeouts": Timeouts(read=0.5)})
        async with serve(app) as url:
            await browse(url, sim, bodies)
            sim.faults.latency = 2.0  # 504
            async with httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client:
                bodies.append((await client.get("/sso/hub/")).text)
            sim.faults.latency = 0.0
        secrets = simulator_secrets(sim)
    assert_no_secret([*log_texts(caplog), *bodies], secrets)


@pytest.mark.parametrize("strategy", ["ticket", "session_api"])
async def test_qps_api_flows_leak_nothing(caplog: pytest.LogCaptureFixture, strategy: str) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    vp = VirtualProxy(prefix="sso", auth="ticket")
    async with QlikSimulator([vp], pfx_password=PFX_PASSWORD) as sim:
        settings = qps_settings(sim, "sso", pfx=True)
        auth = TicketAuth(settings) if strategy == "ticket" else SessionApiAuth(settings)
        app, _ = build_app(sim, target={"auth": auth})
        async with serve(app) as url:
            await browse(url, sim, bodies)
        secrets = simulator_secrets(sim) | {PFX_PASSWORD}
    assert any(r.port == "api" for r in sim.requests)
    assert_no_secret([*log_texts(caplog), *bodies], secrets)


async def test_redis_outage_leaks_neither_password_nor_sealing_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    redis = RedisServer(require_redis_server())
    redis.start()
    # Set after start: the harness's readiness PING is unauthenticated.
    assert _command(redis.port, "CONFIG", "SET", "requirepass", REDIS_PASSWORD).startswith(b"+OK")
    sealing_key = Sealer.generate_key()
    bodies: list[str] = []
    try:
        store = RedisSessionStore(
            f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis.port}/0",
            sealing_keys=[sealing_key],
            socket_timeout=1,
            socket_connect_timeout=1,
            lock_wait=1,
        )
        async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
            app, _ = build_app(sim, store=store)
            async with (
                serve(app) as url,
                httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
            ):
                ok = await client.get("/sso/qps/user")
                assert ok.status_code == 200
                redis.stop()
                down = await client.get("/sso/hub/")
                bodies.append(down.text)
                assert down.status_code == 503
            secrets = simulator_secrets(sim)
        await store.aclose()
        with pytest.raises(StoreUnavailable) as info:
            await RedisSessionStore(
                f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis.port}/0",
                sealing_keys=[sealing_key],
                socket_connect_timeout=0.5,
            ).get("k")
        bodies.append(str(info.value))
        bodies.append(repr(store))
    finally:
        redis.close()
    key_text = sealing_key if isinstance(sealing_key, str) else sealing_key.decode("latin-1")
    assert_no_secret([*log_texts(caplog), *bodies], {REDIS_PASSWORD, key_text, *secrets})


async def test_error_bodies_are_short_and_generic(caplog: pytest.LogCaptureFixture) -> None:
    """Error answers carry a public message only: no upstream URL, exception text or cookie."""
    async with QlikSimulator(api=False) as sim:
        app, _ = build_app(sim)
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        down = await client.get("/sso/hub/", headers={"accept": "application/json"})
    assert down.status_code == 502
    assert json.loads(down.text) == {"error": "Qlik Sense is not available", "status": 502}
    assert sim.proxy_url.split("://")[1] not in down.text
