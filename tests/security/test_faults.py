"""Faults: Qlik down, slow, restarting; browsers vanishing; Redis away; many sockets; login floods.

Each test counts what could leak (asyncio tasks, sockets, logins) before and after, with bounded
waits for the count to settle instead of sleeps.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

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
