"""A bare `pip install .` (no extras) proxies HTTP and the engine WebSocket.

`.ci/run` makes the venv (nothing is downloaded here): it installs the package without extras,
writes what that pulled to `<venv>/bare-packages.txt`, then adds plain uvicorn as the user's own
ASGI server, and points `QLIK_TEST_BARE_VENV` at it. This test runs `tests/bare/app.py` with that
venv's Python against the simulator and drives it as a browser would.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx2 as httpx
import pytest
from websockets.asyncio.client import connect

from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator

from .examples.driver import running
from .needs import unavailable

ROOT = Path(__file__).resolve().parents[1]


def bare_venv() -> Path:
    path = os.environ.get("QLIK_TEST_BARE_VENV")
    if not path:
        unavailable("no bare venv: QLIK_TEST_BARE_VENV is not set (.ci/run creates one)")
    return Path(path)


def test_the_readme_states_what_a_bare_install_pulls() -> None:
    pulled = (bare_venv() / "bare-packages.txt").read_text().split()
    names = {line.split("==")[0].lower() for line in pulled}
    assert not names & {"pyreqwest", "uvicorn", "httpx", "sniffio", "uvloop", "httptools"}
    stated = re.search(r"pulls (\d+) packages", (ROOT / "README.md").read_text())
    assert stated, "README must state how many packages a bare install pulls"
    assert int(stated.group(1)) == len(names), sorted(names)


@pytest.mark.parametrize("command", ["demo", "serve", "simulate"])
def test_server_commands_say_what_to_install(command: str) -> None:
    """Run by .ci/run in the bare venv before uvicorn was added: exit 2 and the exact command."""
    said = (bare_venv() / f"without-server-{command}.txt").read_text().splitlines()
    assert said == [
        f"qlik-sso {command}: needs uvicorn, which the bare install leaves out; install it with: "
        "pip install 'qlik-sso-middleware[server]'",
        "exit 2",
    ]


async def test_a_bare_install_proxies_http_and_websocket(simulator: QlikSimulator) -> None:
    python = bare_venv() / "bin" / "python"
    env = {"QLIK_URL": simulator.proxy_url, "PYTHONPATH": ""}
    args = [str(ROOT / "tests" / "bare" / "app.py")]
    async with running(args, env, ready_path="/engine", python=str(python)) as url:
        async with httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as browser:
            engine = (await browser.get("/engine")).json()
            user = await browser.get("/sso/qps/user", headers={"accept": "application/json"})
        async with connect(
            "ws" + url[4:] + f"/sso/app/{DEMO_APPS[0].id}",
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "app_user=alice"},
        ) as ws:
            auth = json.loads(await ws.recv())
    assert engine == {"engine": "aiohttp", "pyreqwest_imported": False}
    assert (user.status_code, user.json()["userId"]) == (200, "alice")
    assert (auth["params"]["userDirectory"], auth["params"]["userId"]) == ("ACME", "alice")
    assert simulator.logins("ACME\\alice") == 1
