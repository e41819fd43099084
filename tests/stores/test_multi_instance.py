"""Two app processes sharing one Redis: one Qlik login per user, logout reaches both (issue 6)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from qlik_sso_middleware.stores.redis import Sealer
from qlik_sso_middleware.testing import QlikSimulator

from ..redis_server import free_port, redis_url  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def instances(simulator: QlikSimulator, redis_url: str) -> Iterator[list[str]]:  # noqa: F811
    env = os.environ | {
        "QLIK_URL": simulator.proxy_url,
        "REDIS_URL": redis_url,
        "SEAL_KEY": Sealer.generate_key(),
        "KEY_PREFIX": f"multi-{uuid.uuid4().hex}:",
    }
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "tests.instance_app:create_app",
                        "--factory",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--ws",
                        "websockets-sansio",
                        "--log-level",
                        "warning",
                        "--no-access-log",
                    ],
                    cwd=ROOT,
                    env=env,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_ready(urls: list[str]) -> None:
    async with httpx.AsyncClient() as client:
        for url in urls:
            for _ in range(200):
                try:
                    if (await client.get(url + "/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"{url} did not start")


@pytest.fixture
async def ready(instances: list[str]) -> list[str]:
    await wait_ready(instances)
    return instances


async def test_concurrent_first_requests_across_instances_log_in_once(
    simulator: QlikSimulator, ready: list[str]
) -> None:
    limits = httpx.Limits(max_connections=200)
    clients = [
        httpx.AsyncClient(base_url=url, cookies={"app_user": "dave"}, limits=limits, timeout=60)
        for url in ready
    ]
    try:
        responses = await asyncio.gather(*(clients[i % 2].get("/sso/qps/user") for i in range(200)))
    finally:
        for client in clients:
            await client.aclose()
    assert [r.status_code for r in responses] == [200] * 200
    assert {r.json()["userId"] for r in responses} == {"dave"}
    assert simulator.logins("ACME\\dave") == 1
    assert len(simulator.live_sessions("ACME\\dave")) == 1


async def test_logout_on_one_instance_ends_the_session_the_other_uses(
    simulator: QlikSimulator, ready: list[str]
) -> None:
    one, two = ready
    async with httpx.AsyncClient(cookies={"app_user": "erin"}) as browser:
        assert (await browser.get(two + "/sso/qps/user")).status_code == 200
        [session] = simulator.live_sessions("ACME\\erin")
        response = await browser.post(one + "/logout")
        assert response.json() == {"dropped": 1}
        assert simulator.live_sessions("ACME\\erin") == []
        # Instance two no longer presents the ended session: it logs in anew.
        assert (await browser.get(two + "/sso/qps/user")).json()["userId"] == "erin"
    assert simulator.logins("ACME\\erin") == 2
    assert simulator.live_sessions("ACME\\erin")[0].id != session.id
