"""Drive a runnable example as a user would: a real server process on a loopback port, a form
login, the embedded page through the proxy, and an engine WebSocket round trip."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
from websockets.asyncio.client import connect

from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator

from ..matrix.servers import command
from ..servers import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
APP = DEMO_APPS[0]
_CSRF = re.compile(r"name=['\"]?csrfmiddlewaretoken['\"]? value=['\"]([^'\"]+)")


@contextlib.asynccontextmanager
async def running(
    args: list[str],
    env: Mapping[str, str],
    *,
    ready_path: str = "/login",
    server: str = "uvicorn",
    python: str = sys.executable,
) -> AsyncIterator[str]:
    """Start `python <args> --port N`, wait until it answers, yield its URL, stop it by PID.

    `server` other than uvicorn (the examples' own `main`): `examples/<x>/app.py` is served as
    `examples.<x>.app:create_app` by that server's command line; the Django project's `serve.py`
    takes `--server`. `python`: the interpreter (another venv's)."""
    port = free_port()
    argv = [*args, "--port", str(port)]
    if server != "uvicorn" and args[0].endswith("/serve.py"):
        argv += ["--server", server]
    elif server != "uvicorn":
        module = args[0].removesuffix(".py").replace("/", ".")
        argv = command(server, f"{module}:create_app", port, factory=True)
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            python,
            *argv,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=EXAMPLES.parent,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(timeout=2) as probe:
                for _ in range(600):  # bounded: 60 s at most on a loaded machine
                    if process.returncode is not None:
                        break
                    with contextlib.suppress(httpx.TransportError):
                        await probe.get(url + ready_path)
                        break
                    await asyncio.sleep(0.1)
            if process.returncode is not None:
                log.seek(0)
                output = log.read().decode(errors="replace")
                raise AssertionError(f"example exited early:\n{output}")
            yield url
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()


@dataclass
class Visit:
    login_status: int
    embed_html: str
    frame_src: str
    frame_status: int
    frame_html: str
    mashup_html: str
    script: str
    auth: dict[str, Any]
    layout: dict[str, Any]
    logout_status: int
    after_logout_status: int


def _csrf(text: str) -> dict[str, str]:
    match = _CSRF.search(text)
    return {"csrfmiddlewaretoken": match.group(1)} if match else {}


async def engine_round_trip(
    url: str, prefix: str, cookie: str, host: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """OpenDoc → GetObject → GetLayout through the app's own origin (or `host`, a virtual host
    name served by `url`'s socket)."""
    origin = f"http://{host}" if host else url
    port = int(url.rsplit(":", 1)[1])
    async with connect(
        f"ws://{host or url[len('http://') :]}/{prefix}/app/{APP.id}",
        origin=origin,  # type: ignore[arg-type]
        additional_headers={"cookie": cookie},
        max_size=None,
        host="127.0.0.1",
        port=port,
    ) as ws:
        auth = json.loads(await ws.recv())
        connected = json.loads(await ws.recv())
        assert connected["method"] == "OnConnected", connected

        async def call(id_: int, method: str, handle: int, params: object) -> dict[str, Any]:
            await ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": id_,
                        "method": method,
                        "handle": handle,
                        "params": params,
                    }
                )
            )
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == id_:
                    assert "result" in message, message
                    result: dict[str, Any] = message["result"]
                    return result

        doc = await call(1, "OpenDoc", -1, [APP.id])
        obj = await call(2, "GetObject", doc["qReturn"]["qHandle"], [APP.objects[0].id])
        layout = await call(3, "GetLayout", obj["qReturn"]["qHandle"], [])
    return auth["params"], layout["qLayout"]


async def visit(
    url: str,
    *,
    user: str = "alice",
    password: str = "demo",
    prefix: str = "sso",
    host: str | None = None,
) -> Visit:
    """Log in through the form, load the iframe page and its Qlik source, the mashup page and its
    script, do the engine round trip, log out."""
    headers = {"host": host} if host else {}
    origin = f"http://{host}" if host else url
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        form = await client.get("/login")
        assert form.status_code == 200
        login = await client.post(
            "/login",
            data={"username": user, "password": password, **_csrf(form.text)},
            headers={"origin": origin, "referer": origin + "/login"},
            follow_redirects=True,
        )
        embed = await client.get("/embed")
        match = re.search(r"id=['\"]?qlik-frame['\"]? src=['\"]([^'\"]+)", embed.text)
        assert match, embed.text
        src = html.unescape(match.group(1))
        frame = await client.get(src, headers={"accept": "text/html"})
        mashup = await client.get("/mashup")
        script_match = re.search(r"<script src=['\"]?([^'\" >]+)", mashup.text)
        assert script_match, mashup.text
        script = await client.get(script_match.group(1))
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        auth, layout = await engine_round_trip(url, prefix, cookie, host)
        logout = await client.post(
            "/logout",
            data=_csrf(embed.text),
            headers={"origin": origin, "referer": origin + "/embed"},
        )
        after = await client.get(f"/{prefix}/qps/user", headers={"accept": "application/json"})
    return Visit(
        login_status=login.status_code,
        embed_html=embed.text,
        frame_src=src,
        frame_status=frame.status_code,
        frame_html=frame.text,
        mashup_html=mashup.text,
        script=script.text,
        auth=auth,
        layout=layout,
        logout_status=logout.status_code,
        after_logout_status=after.status_code,
    )


def assert_visit(
    visit: Visit,
    sim: QlikSimulator,
    *,
    user: str = "alice",
    directory: str = "ACME",
    prefix: str = "sso",
) -> None:
    """What every example must show: the user reached Qlik as themselves and only themselves."""
    assert visit.login_status == 200
    assert visit.frame_src.startswith(f"/{prefix}/single/?appid={APP.id}")
    assert visit.frame_status == 200, visit.frame_html[:500]
    assert "qlik" in visit.frame_html.lower()
    assert 'id="mashup"' in visit.mashup_html or "id=mashup" in visit.mashup_html
    assert "OpenDoc" in visit.script and "GetLayout" in visit.script
    assert (visit.auth["userDirectory"], visit.auth["userId"]) == (directory, user)
    assert visit.auth["mustAuthenticate"] is False
    assert visit.layout["title"] == APP.objects[0].title
    assert visit.logout_status in (200, 302, 303)
    assert visit.after_logout_status in (401, 302)
    identity = f"{directory}\\{user}"
    seen = [r for r in sim.requests if r.port == "proxy" and r.user is not None]
    assert seen and all(r.user == identity for r in seen)
    handshakes = [r for r in sim.requests if r.websocket]
    assert len(handshakes) == 1 and handshakes[0].user == identity
    assert "qlik-csrf-token=" in handshakes[0].query
    # Logging out of the app ended the Qlik session.
    assert sim.live_sessions(identity) == []


async def assert_embed_snippets(url: str, embed_html: str) -> None:
    """The example links the copyable qlik-embed / @qlik/api page and serves it with its script:
    the host is the app's own origin plus the middleware's prefix, the auth type windowscookie."""
    assert "/static/qlik-embed.html" in embed_html
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        page = await client.get("/static/qlik-embed.html")
        script = await client.get("/static/qlik-api-example.js")
    assert page.status_code == 200 and script.status_code == 200
    assert '<qlik-embed ui="classic/app"' in page.text
    assert 'location.origin + "/sso"' in page.text and '"windowscookie"' in page.text
    assert "qix.openAppSession({ appId, hostConfig })" in script.text
    assert "host: `${location.origin}/sso`" in script.text
