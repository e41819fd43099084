"""The case offload mode exists for: a Django project under gunicorn (WSGI, which cannot carry a
WebSocket: the in-process adapter answers upgrades with 501) behind nginx, embedding Qlik's
`single/` page and talking to the engine over its WebSocket. gunicorn runs as a child process,
stopped by its PID; the test shares its database to create the user."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2 as httpx
import pytest
import pytest_asyncio
import websockets

from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..needs import unavailable
from ..servers import free_port
from .front import front_proxy, stop_process

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
APP = DEMO_APPS[0]
SETTINGS = "tests.offload.gunicorn_project"
_SETUP = """
import django
django.setup()
from django.core.management import call_command
from tests.integrations.djangoapp.models import Member
call_command("migrate", run_syncdb=True, verbosity=0)
Member.objects.create_user("carol", "pw")
"""


def _environment(tmp: Path, qlik_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "QLIK_SSO_TEST_DB": str(tmp / "db.sqlite3"),
        "QLIK_SSO_TEST_QLIK": qlik_url,
    }


@pytest.fixture(scope="module")
def gunicorn_installed() -> None:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        unavailable("gunicorn is not installed (pip install -e '.[dev]')")


def _start_gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        f"{SETTINGS}:application_factory()",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "4",
        "--worker-class",
        "gthread",
        "--log-level",
        "warning",
    ]
    with open(log, "wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, gunicorn_installed: None) -> Path:
    return tmp_path_factory.mktemp("gunicorn-django")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(project: Path) -> AsyncIterator[tuple[QlikSimulator, str, str]]:
    """(simulator, nginx URL, gunicorn URL)."""
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        env = _environment(project, sim.proxy_url)
        setup = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", _SETUP], cwd=ROOT, env=env, capture_output=True
        )
        assert setup.returncode == 0, setup.stderr.decode()[-2000:]
        port = free_port()
        log = project / "gunicorn.log"
        proc = await asyncio.to_thread(_start_gunicorn, env, port, log)
        app_url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(500):
                    assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
                    try:
                        await client.get(app_url + "/login/")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            async with front_proxy("nginx", qlik_url=sim.proxy_url, app_url=app_url) as url:
                yield sim, url, app_url
        finally:
            await asyncio.to_thread(stop_process, proc)


async def test_a_wsgi_django_app_behind_nginx_embeds_single_and_the_engine_websocket(
    stack: tuple[QlikSimulator, str, str],
) -> None:
    sim, url, app_url = stack
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        login = await client.post("/login/", data={"username": "carol", "password": "pw"})
        assert login.status_code == 200, login.text
        embed = await client.get(f"/sso/single/?appid={APP.id}&obj=sales-table")
        assert embed.status_code == 200
        assert "text/html" in embed.headers["content-type"]
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())

        ws_url = url.replace("http://", "ws://") + f"/sso/app/{APP.id}"
        async with websockets.connect(
            ws_url,
            origin=url,
            additional_headers={"Cookie": cookie},  # type: ignore[arg-type]
        ) as socket:
            auth = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert auth["params"]["userId"] == "carol"
            assert auth["params"]["mustAuthenticate"] is False
            await socket.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "EngineVersion",
                        "handle": -1,
                        "params": {},
                    }
                )
            )
            for _ in range(5):
                reply = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if reply.get("id") == 1:
                    break
            assert reply["result"]["qVersion"]["qComponentVersion"]

        # The control: the same upgrade straight at gunicorn is the 501 WSGI gives.
        direct = await client.get(
            f"{app_url}/sso/app/{APP.id}",
            headers={
                "connection": "Upgrade",
                "upgrade": "websocket",
                "sec-websocket-version": "13",
                "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
                "origin": app_url,
            },
        )
        assert direct.status_code == 501

        logout = await client.post("/logout/")
        assert logout.json() == {"logged_out": True}
    assert sim.live_sessions("ACME\\carol") == []
    engine = [r for r in sim.requests if r.websocket and r.status == 101]
    assert [r.user for r in engine] == ["ACME\\carol"]
