"""Large bodies and frames stream through the simulator in bounded memory (measured, not timed)."""

from __future__ import annotations

import hashlib

import httpx2 as httpx
import psutil
import pytest
from websockets.asyncio.client import connect

from qlik_sso_middleware.testing import QlikSimulator

from .conftest import login, ws_url

pytestmark = pytest.mark.slow


async def test_quarter_gib_body_streams_in_constant_memory(sim: QlikSimulator) -> None:
    size = 256 * 1024 * 1024
    _, cookie, _ = await login(sim)
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    received = 0
    async with (
        httpx.AsyncClient(base_url=sim.proxy_url, headers={"Cookie": cookie}) as client,
        client.stream("GET", f"/sso/content/_sim/bytes?size={size}&chunk=1048576") as response,
    ):
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received % (16 * 1024 * 1024) < len(chunk):
                peak = max(peak, process.memory_info().rss)
    assert received == size
    assert peak - baseline < 96 * 1024 * 1024


async def test_large_websocket_frame_round_trips(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    payload = bytes(range(256)) * (64 * 1024 * 4)  # 64 MiB
    url = ws_url(sim, f"/sso/app/_sim_echo?qlik-csrf-token={token}")
    async with connect(url, additional_headers={"Cookie": cookie}, max_size=None) as ws:
        await ws.send(payload)
        echoed = await ws.recv()
    assert echoed == payload
    [inbound] = [f for f in sim.frames if f.direction == "in"]
    assert inbound.size == len(payload)
    assert inbound.data == hashlib.sha256(payload).hexdigest()
