"""`qlik-sso demo` driven as a user would: the real command in a subprocess, real HTTP and WebSocket.

Login with the form, load the embedded page through the proxy, an engine WebSocket round trip with
the demo's Origin, logout, then prove through the simulator's QPS API (with the test certificates
the demo prints) that the Qlik session really ended; SIGINT stops it with exit status 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from qlik_sso_middleware import QlikIdentity
from qlik_sso_middleware.auth._qps import QPSClient, QPSSettings
from qlik_sso_middleware.testing import DEMO_APPS

_START_TIMEOUT = 120.0
_APP = DEMO_APPS[0]


@dataclass
class Demo:
    proc: asyncio.subprocess.Process
    url: str
    banner: str
    qps_url: str
    cert_dir: Path


def _command() -> list[str]:
    script = Path(sys.executable).with_name("qlik-sso")
    if script.exists():  # the installed entry point, as a user runs it
        return [str(script)]
    return [sys.executable, "-m", "qlik_sso_middleware.cli"]


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    proc = await asyncio.create_subprocess_exec(
        *_command(),
        "demo",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(_START_TIMEOUT):
            while True:
                raw = await proc.stdout.readline()
                if not raw:
                    err = await proc.stderr.read() if proc.stderr else b""
                    pytest.fail(f"demo exited early: {''.join(lines)}\n{err.decode()}")
                lines.append(raw.decode())
                if raw.startswith(b"Open: "):
                    break
        banner = "".join(lines)
        url = lines[-1].split()[1].rstrip("/")
        qps = re.search(r"QPS API\s+(https://\S+?)/qps/", banner)
        certs = re.search(r"test certificates\s+(\S+)", banner)
        assert qps and certs, banner
        yield Demo(proc, url, banner, qps.group(1), Path(certs.group(1)))
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def _login(client: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    assert page.status_code == 200
    return await client.post(
        "/login", data={"username": user, "password": password, "csrf": _csrf(page.text)}
    )


async def _rpc(
    ws: ClientConnection, request_id: int, handle: int, method: str, params: list[Any]
) -> Any:
    await ws.send(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "handle": handle,
                "method": method,
                "params": params,
            }
        )
    )
    for _ in range(20):  # notifications may come first
        message = json.loads(await ws.recv())
        if message.get("id") == request_id:
            assert "error" not in message, message
            return message["result"]
    pytest.fail(f"no answer to {method}")


def _qps(demo: Demo) -> QPSClient:
    return QPSClient(
        QPSSettings(
            api_url=demo.qps_url,
            prefix="sso",
            root=demo.cert_dir / "root.pem",
            client_cert=demo.cert_dir / "client.pem",
            client_key=demo.cert_dir / "client_key.pem",
        )
    )


async def test_demo_login_embed_websocket_logout(demo: Demo) -> None:
    for fixed in (
        "prefix   sso",
        "hdr-usr",
        "alice / demo",
        "bob / demo",
        "ACME",
        "/login",
        "/logout",
    ):
        assert fixed in demo.banner
    origin = demo.url
    alice = QlikIdentity("ACME", "alice")
    async with (
        httpx.AsyncClient(base_url=demo.url, timeout=30) as client,
        _qps(demo) as qps,
    ):
        # Not logged in: a page load of the Qlik path goes to the login page.
        frame = f"/sso/single/?appid={_APP.id}&obj={_APP.objects[1].id}"
        anonymous = await client.get(frame, headers={"accept": "text/html"})
        assert anonymous.status_code == 302
        assert anonymous.headers["location"].startswith("/login?next=")
        assert "alice" in (await client.get("/login")).text  # users shown on the login page

        wrong = await _login(client, "alice", "nope")
        assert wrong.status_code == 401
        assert "wrong password" in wrong.text
        ok = await _login(client, "alice", "demo")
        assert ok.status_code == 303
        assert ok.headers["location"] == "/"

        home = await client.get("/")
        assert home.status_code == 200
        assert 'id="qlik-frame"' in home.text
        assert f'src="/sso/single/?appid={_APP.id}&amp;obj=' in home.text
        assert 'id="mashup" data-state="connecting"' in home.text
        assert (await client.get("/static/demo.js")).status_code == 200

        embedded = await client.get(frame)
        assert embedded.status_code == 200
        assert 'data-kind="single"' in embedded.text
        user = (await client.get("/sso/qps/user")).json()
        assert (user["userDirectory"], user["userId"]) == ("ACME", "alice")
        assert len(await qps.get_user_sessions(alice)) == 1

        # The mashup's engine socket, with the demo page's Origin and the app's session cookie.
        ws_url = demo.url.replace("http://", "ws://") + f"/sso/app/{_APP.id}"
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        headers = {"cookie": cookie}
        async with connect(ws_url, origin=origin, additional_headers=headers) as ws:  # type: ignore[arg-type]
            info = json.loads(await ws.recv())
            assert info["method"] == "OnAuthenticationInformation"
            assert (info["params"]["userDirectory"], info["params"]["userId"]) == ("ACME", "alice")
            doc = await _rpc(ws, 1, -1, "OpenDoc", [_APP.id])
            obj = await _rpc(ws, 2, doc["qReturn"]["qHandle"], "GetObject", [_APP.objects[0].id])
            layout = await _rpc(ws, 3, obj["qReturn"]["qHandle"], "GetLayout", [])
            matrix = layout["qLayout"]["qHyperCube"]["qDataPages"][0]["qMatrix"]
            assert [row[0]["qText"] for row in matrix] == [r[0] for r in _APP.objects[0].rows]
        # A foreign page cannot open the socket with the user's cookie.
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url, origin="http://evil.example", additional_headers=headers):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403

        # Logout needs the form's CSRF token.
        forged = await client.post("/logout", data={})
        assert forged.status_code == 403
        assert (await client.get("/sso/qps/user")).status_code == 200
        out = await client.post("/logout", data={"csrf": _csrf(home.text)})
        assert out.status_code == 303
        assert out.headers["location"] == "/login"
        assert (await client.get("/sso/qps/user")).status_code == 401
        assert await qps.get_user_sessions(alice) == []

    demo.proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        status = await demo.proc.wait()
    assert status == 0


async def test_demo_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            *_command(),
            "demo",
            "--port",
            str(port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            _out, err = await proc.communicate()
    assert proc.returncode == 1
    assert f"port {port}" in err.decode()
    assert "--port" in err.decode()
    assert "Traceback" not in err.decode()
