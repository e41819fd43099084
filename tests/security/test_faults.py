"""Faults: Qlik down, slow, restarting; browsers vanishing; Redis away; many sockets; login floods.

Each test counts what could leak (asyncio tasks, sockets, logins) before and after, with bounded
waits for the count to settle instead of sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect

from qlik_sso_middleware import HeaderAuth, QlikIdentity
from qlik_sso_middleware.auth.base import LoginContext
from qlik_sso_middleware.errors import ConfigurationError
from qlik_sso_middleware.stores.base import QlikSession
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..apps import build_app
from ..servers import serve

pytestmark = pytest.mark.asyncio

ENGINE = f"/sso/app/{DEMO_APPS[0].id}"
ECHO = "/sso/content/_sim/echo"


def ws_url(base: str, path: str) -> str:
    return "ws" + base[len("http") :] + path


async def open_engine(url: str, user: str = "alice") -> dict[str, object]:
    """Open the engine socket as `user`, return Qlik's first message, close."""
    async with connect(
        ws_url(url, ENGINE),
        origin=url,  # type: ignore[arg-type]
        additional_headers={"cookie": f"app_user={user}"},
        open_timeout=10,
    ) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert isinstance(first, dict)
    return first


async def test_qlik_restart_after_a_websocket_recovers_the_websocket() -> None:
    """The CSRF token cached for a session died with it; the next socket must still open."""
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        app, _ = build_app(sim)
        async with serve(app) as url:
            before = await open_engine(url)
            sim.restart()
            after = await open_engine(url)
            again = await open_engine(url)
    for message in (before, after, again):
        params = message["params"]
        assert isinstance(params, dict)
        assert (params["userId"], params["mustAuthenticate"]) == ("alice", False)
    # One login before the restart, one after: recovery without a loop.
    assert sim.logins("ACME\\alice") == 2
    assert len(sim.live_sessions("ACME\\alice")) == 1


# -- a flood of users without sessions -------------------------------------------------------------


class GatedHeaderAuth(HeaderAuth):
    """Real header logins through the simulator, held at a gate and counted while they wait."""

    def __init__(self) -> None:
        super().__init__("hdr-usr")
        self.gate = asyncio.Event()
        self.active = 0
        self.peak = 0

    async def login(self, identity: QlikIdentity, ctx: LoginContext) -> QlikSession:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await self.gate.wait()
            return await super().login(identity, ctx)
        finally:
            self.active -= 1


async def wait_until(condition: Callable[[], bool], what: str, rounds: int = 1000) -> None:
    """Poll `condition` (bounded); for counts that settle asynchronously, not for timing."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_login_flood_is_bounded_and_spares_logged_in_users() -> None:
    auth = GatedHeaderAuth()
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        app, sso = build_app(sim, target={"auth": auth}, max_concurrent_logins=3, login_wait=0.2)
        async with (
            serve(app) as url,
            httpx.AsyncClient(
                base_url=url, timeout=30, limits=httpx.Limits(max_connections=50)
            ) as client,
        ):
            auth.gate.set()
            assert (await client.get(ECHO, headers={"cookie": "app_user=bob"})).status_code == 200
            auth.gate.clear()
            baseline = len(asyncio.all_tasks())
            flood = [
                asyncio.create_task(
                    client.get(ECHO, headers={"cookie": f"app_user=user{i}", "accept": "x/y"})
                )
                for i in range(20)
            ]
            await wait_until(lambda: sum(t.done() for t in flood) == 17, "17 refusals")
            refused = [t.result() for t in flood if t.done()]
            # bob already has a session: the flood does not stand in his way.
            assert (await client.get(ECHO, headers={"cookie": "app_user=bob"})).status_code == 200
            assert auth.peak == 3
            auth.gate.set()
            admitted = [r for r in await asyncio.gather(*flood) if r not in refused]
            await wait_until(lambda: len(asyncio.all_tasks()) <= baseline, "tasks to settle")
        assert not sso.sessions._inflight
    assert [r.status_code for r in refused] == [503] * 17
    assert all(r.headers["retry-after"] == "1" for r in refused)
    assert refused[0].json()["error"] == "Too many sign-ins in progress, try again shortly"
    assert [r.status_code for r in admitted] == [200] * 3
    assert sim.logins() == 4  # bob + the three admitted


async def test_login_limits_are_validated_at_construction() -> None:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        for options in ({"max_concurrent_logins": 0}, {"login_wait": 0}, {"login_wait": "1"}):
            with pytest.raises(ConfigurationError) as info:
                build_app(sim, **options)
            assert info.value.field == next(iter(options))
