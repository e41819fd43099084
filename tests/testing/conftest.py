"""Fixtures and helpers for the simulator's own tests (real loopback sockets, real TLS)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import pytest
from websockets.asyncio.client import ClientConnection

from qlik_sso_middleware.testing import DEMO_APPS, ManualClock, QlikSimulator

USER = "ACME\\alice"
APP = DEMO_APPS[0].id
XRF = "abcdefghij123456"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[QlikSimulator]:
    async with QlikSimulator(clock=clock) as simulator:
        yield simulator


def ws_url(sim: QlikSimulator, path: str) -> str:
    return sim.proxy_url.replace("http", "ws", 1) + path


async def login(sim: QlikSimulator, user: str = USER, prefix: str = "sso") -> tuple[str, str, str]:
    """Log `user` in through header auth: (cookie value, Cookie header, csrf token)."""
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        first = await client.get(f"/{prefix}/hub/", headers={"hdr-usr": user})
        assert first.status_code == 200
        name = sim.cookie_name(prefix)
        value = first.cookies[name]
        token = await client.get(f"/{prefix}/qps/csrftoken")
        return value, f"{name}={value}", token.headers["qlik-csrf-token"]


def api_client(sim: QlikSimulator, *, with_cert: bool = True) -> httpx.AsyncClient:
    """An httpx client for the QPS API port (mutual TLS with the generated client certificate)."""
    assert sim.certificates is not None
    context = ssl.create_default_context(cafile=str(sim.certificates.root))
    if with_cert:
        context.load_cert_chain(str(sim.certificates.client), str(sim.certificates.client_key))
    assert sim.api_url is not None
    return httpx.AsyncClient(base_url=sim.api_url, verify=context)


def xrf(path: str) -> tuple[str, dict[str, str]]:
    sep = "&" if "?" in path else "?"
    return f"{path}{sep}xrfkey={XRF}", {"X-Qlik-Xrfkey": XRF}


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), 10)
    data: dict[str, Any] = json.loads(message)
    return data


async def rpc(ws: ClientConnection, request_id: int, method: str, handle: int, *params: Any) -> Any:
    await ws.send(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": method,
                "handle": handle,
                "params": params,
            }
        )
    )
    while True:
        answer = await recv_json(ws)
        if answer.get("id") == request_id:
            return answer
