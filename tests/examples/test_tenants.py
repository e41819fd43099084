"""examples/tenants: two host names, two user directories, two virtual proxies — and no way across."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

from .driver import APP, assert_visit, running, visit


@pytest.fixture
async def sim() -> AsyncIterator[QlikSimulator]:
    vps = [
        VirtualProxy(prefix="ta", header_name="hdr-a"),
        VirtualProxy(prefix="tb", header_name="hdr-b"),
    ]
    async with QlikSimulator(vps) as simulator:
        yield simulator


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_each_tenant_reaches_its_own_qlik_end_to_end(
    sim: QlikSimulator, asgi_server: str
) -> None:
    async with running(
        ["examples/tenants/app.py"], {"QLIK_URL": sim.proxy_url}, server=asgi_server
    ) as url:
        port = port_of(url)
        alice = await visit(url, user="alice", prefix="ta", host=f"a.localhost:{port}")
        assert_visit(alice, sim, user="alice", directory="TENANT_A", prefix="ta")
        assert all(r.header("hdr-a") == ["TENANT_A\\alice"] for r in sim.requests if r.user)
        sim.clear_log()
        bob = await visit(url, user="bob", prefix="tb", host=f"b.localhost:{port}")
        assert_visit(bob, sim, user="bob", directory="TENANT_B", prefix="tb")
        assert all(r.header("hdr-b") == ["TENANT_B\\bob"] for r in sim.requests if r.user)


async def test_a_tenant_a_user_can_never_reach_tenant_b(sim: QlikSimulator) -> None:
    async with running(["examples/tenants/app.py"], {"QLIK_URL": sim.proxy_url}) as url:
        port = port_of(url)
        a_host, b_host = f"a.localhost:{port}", f"b.localhost:{port}"
        async with httpx.AsyncClient(base_url=url, headers={"host": a_host}) as alice:
            login = await alice.post("/login", data={"username": "alice", "password": "demo"})
            assert login.status_code == 303
            assert (await alice.get("/ta/qps/user")).json()["userDirectory"] == "TENANT_A"
            # Alice asks for tenant B's Qlik on her own host: refused before Qlik.
            other = await alice.get("/tb/qps/user", headers={"accept": "application/json"})
            assert other.status_code == 403
            # A forged identity header for tenant B's VP is stripped; she stays herself.
            spoof = await alice.get(
                "/ta/qps/user", headers={"hdr-b": "TENANT_B\\bob", "hdr-a": "TENANT_A\\root"}
            )
            assert spoof.json()["userId"] == "alice"
            cookie = "; ".join(f"{k}={v}" for k, v in alice.cookies.items())
        # Her cookie replayed against tenant B's host: nobody there, on either mount.
        async with httpx.AsyncClient(
            base_url=url, headers={"host": b_host, "cookie": cookie, "accept": "application/json"}
        ) as replay:
            assert (await replay.get("/tb/qps/user")).status_code == 401
            assert (await replay.get("/ta/qps/user")).status_code == 401
        # And tenant B's engine WebSocket refuses her.
        async with connect(
            f"ws://{a_host}/tb/app/{APP.id}",
            origin=f"http://{a_host}",  # type: ignore[arg-type]
            additional_headers={"cookie": cookie},
            host="127.0.0.1",
            port=port,
        ) as ws:
            with pytest.raises(ConnectionClosed):
                json.loads(await ws.recv())
            assert ws.close_code == 1008
    # What "Qlik" received proves it: nothing at all on tenant B's virtual proxy, and on
    # tenant A's only alice, in tenant A's directory, with tenant A's header.
    assert [r for r in sim.requests if r.prefix == "tb"] == []
    assert sim.logins(prefix="tb") == 0
    seen = [r for r in sim.requests if r.prefix == "ta"]
    assert seen and {r.user for r in seen if r.user} == {"TENANT_A\\alice"}
    assert all(r.header("hdr-b") == [] for r in sim.requests)
