"""`qlik-sso serve` end to end: a signed handoff from the app, Qlik through the proxy (HTTP and the
engine WebSocket), everything else to the app, health, metrics, logout; and the real command as a
subprocess stopped with SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.client import connect

from qlik_sso_middleware import QlikIdentity
from qlik_sso_middleware.cli import main
from qlik_sso_middleware.config import load_config
from qlik_sso_middleware.serve.app import build_serve_app
from qlik_sso_middleware.serve.handoff import Handoff
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator
from tests.servers import serve

KEY = "serve-test-key-0123456789abcdef"
OLD_KEY = "serve-old-key-0123456789abcdef"
ALICE = QlikIdentity("ACME", "alice")


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "path": request.url.path,
            "query": request.url.query,
            "method": request.method,
            "size": len(body),
            "cookies": dict(request.cookies),
            "forwarded_host": request.headers.get("x-forwarded-host"),
            "host": request.headers.get("host"),
            "raw_headers": [
                [k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers.raw
            ],
        },
        headers={"set-cookie": "app_cookie=1; Path=/"},
    )


@pytest.fixture
async def app_url() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])
    async with serve(app) as url:
        yield url


def config_text(sim: QlikSimulator, upstream: str, **extra: str) -> str:
    lines = [
        "[qlik]",
        f'url = "{sim.proxy_url}"',
        "[resolver]",
        f'kind = "{extra.get("kind", "handoff")}"',
        "[serve]",
        f'upstream = "{upstream}"',
        f'keys = ["{KEY}", "{OLD_KEY}"]',
        "cookie_secure = false",
        "port = 0",
        "[metrics]",
        "enabled = true",
    ]
    return "\n".join(lines) + "\n"


async def test_handoff_proxy_app_metrics_logout(
    tmp_path: Path, simulator: QlikSimulator, app_url: str
) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(config_text(simulator, app_url))
    proxy = build_serve_app(load_config(path, {}))
    async with serve(proxy) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/_qlik_sso/health")).json() == {"status": "ok"}
        assert (await client.get("/sso/qps/user")).status_code == 401
        assert (await client.get("/_qlik_sso/handoff?token=forged")).status_code == 401

        # The app signs with the older key (rotation in progress): still accepted.
        token = Handoff([OLD_KEY]).issue(ALICE, next="/dashboard?tab=1")
        landed = await client.get("/_qlik_sso/handoff", params={"token": token})
        assert landed.status_code == 303
        assert landed.headers["location"] == "/dashboard?tab=1"
        assert "HttpOnly" in landed.headers["set-cookie"]
        replay = await httpx.AsyncClient(base_url=url).get(
            "/_qlik_sso/handoff", params={"token": token}
        )
        assert replay.status_code == 401

        user = (await client.get("/sso/qps/user")).json()
        assert (user["userDirectory"], user["userId"]) == ("ACME", "alice")

        # Everything else reaches the app, without the proxy's own cookie.
        client.cookies.set("mine", "kept")
        page = await client.get("/dashboard?tab=1")
        seen = page.json()
        assert seen["path"] == "/dashboard" and seen["query"] == "tab=1"
        assert seen["cookies"] == {"mine": "kept"}
        assert seen["forwarded_host"] == url.removeprefix("http://")
        assert seen["host"] == app_url.removeprefix("http://")
        assert page.headers["set-cookie"] == "app_cookie=1; Path=/"
        upload = await client.post("/upload", content=b"x" * 300_000)
        assert upload.json()["size"] == 300_000

        # Engine WebSocket through the proxy with the proxy's own Origin.
        ws_url = url.replace("http://", "ws://") + f"/sso/app/{DEMO_APPS[0].id}"
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        async with connect(ws_url, origin=url, additional_headers={"cookie": cookie}) as ws:  # type: ignore[arg-type]
            info = json.loads(await ws.recv())
            assert info["params"]["userId"] == "alice"
            metrics = (await client.get("/_qlik_sso/metrics")).text
            assert "qlik_sso_open_websockets 1.0" in metrics
        metrics = (await client.get("/_qlik_sso/metrics")).text
        assert 'qlik_sso_logins_total{result="ok"} 1.0' in metrics
        assert 'qlik_sso_upstream_responses_total{status_class="2xx"}' in metrics
        assert 'qlik_sso_session_lookups_total{result="hit"}' in metrics
        assert "qlik_sso_upstream_latency_seconds_count" in metrics

        assert simulator.live_sessions("ACME\\alice") != []
        foreign = await client.post("/_qlik_sso/logout", headers={"origin": "http://evil.example"})
        assert foreign.status_code == 403
        out = await client.post("/_qlik_sso/logout", headers={"origin": url})
        assert out.status_code == 303
        assert "Max-Age=0" in out.headers["set-cookie"]
        assert simulator.live_sessions("ACME\\alice") == []
        assert (await client.get("/sso/qps/user")).status_code == 401


async def test_browser_cannot_set_forwarded_headers_for_the_app(
    tmp_path: Path, simulator: QlikSimulator, app_url: str
) -> None:
    """Every spelling of X-Forwarded-* a server may fold into the real one (case, `_` for `-`) is
    dropped; the app sees only the values the proxy sets."""
    path = tmp_path / "serve.toml"
    path.write_text(config_text(simulator, app_url))
    proxy = build_serve_app(load_config(path, {}))
    # (The exact `X-Forwarded-For` is left out: the test server, like uvicorn's default, trusts it
    # from a loopback peer, which every test client is.)
    spoofed = [
        ("X_Forwarded_For", "6.6.6.6"),
        ("x_forwarded_host", "evil.example"),
        ("X_FORWARDED_PROTO", "https"),
        ("x-forwarded_for", "6.6.6.6"),
    ]
    async with serve(proxy) as url, httpx.AsyncClient(base_url=url) as client:
        seen = (await client.get("/page", headers=spoofed)).json()
    forwarded = [
        (name.lower().replace("_", "-"), value)
        for name, value in seen["raw_headers"]
        if name.lower().replace("_", "-").startswith("x-forwarded-")
    ]
    assert sorted(forwarded) == [
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-host", url.removeprefix("http://")),
        ("x-forwarded-proto", "http"),
    ]


async def test_trusted_header_mode(tmp_path: Path, simulator: QlikSimulator, app_url: str) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(config_text(simulator, app_url, kind="trusted_header"))
    proxy = build_serve_app(load_config(path, {}))
    async with serve(proxy) as url, httpx.AsyncClient(base_url=url) as client:
        user = await client.get("/sso/qps/user", headers={"x-remote-user": "ACME\\bob"})
        assert user.json()["userId"] == "bob"
        assert (await client.get("/_qlik_sso/handoff?token=x")).status_code == 404


def test_serve_configuration_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(
        '[qlik]\nurl = "http://127.0.0.1:1"\n[serve]\nupstream = "http://127.0.0.1:2"\n'
    )
    assert main(["serve", "--config", str(path)]) == 2
    assert "resolver.kind: serve needs 'handoff' or 'trusted_header'" in capsys.readouterr().err
    path.write_text(path.read_text() + '[resolver]\nkind = "handoff"\n')
    assert main(["serve", "--config", str(path)]) == 2
    assert "serve.keys: at least one signing key" in capsys.readouterr().err
    path.write_text(path.read_text().replace("[serve]\n", '[serve]\nkeys = ["short"]\n'))
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: serve.keys:" in err and "short" not in err


async def test_serve_command_as_a_process(
    tmp_path: Path, simulator: QlikSimulator, app_url: str
) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(config_text(simulator, app_url))
    script = Path(sys.executable).with_name("qlik-sso")
    command = (
        [str(script)] if script.exists() else [sys.executable, "-m", "qlik_sso_middleware.cli"]
    )
    proc = await asyncio.create_subprocess_exec(
        *command, "serve", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            line = (await proc.stdout.readline()).decode()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ", 1)[1].split()[0]
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/_qlik_sso/health")).status_code == 200
            token = Handoff([KEY]).issue(ALICE)
            assert (
                await client.get("/_qlik_sso/handoff", params={"token": token})
            ).status_code == 303
            assert (await client.get("/sso/qps/user")).json()["userId"] == "alice"
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_no_secret_reaches_the_logs(
    tmp_path: Path,
    simulator: QlikSimulator,
    app_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "serve.toml"
    path.write_text(config_text(simulator, app_url))
    proxy = build_serve_app(load_config(path, {}))
    token = Handoff([KEY]).issue(ALICE)
    async with serve(proxy) as url, httpx.AsyncClient(base_url=url) as client:
        await client.get("/_qlik_sso/handoff", params={"token": token})
        assert (await client.get("/_qlik_sso/handoff", params={"token": token})).status_code == 401
        await client.get("/sso/qps/user")
        own_cookie = client.cookies.get("qlik_sso_session")
        await client.post("/_qlik_sso/logout")
    sessions = [r for r in simulator.requests if r.session_id]
    assert own_cookie and sessions
    # Our loggers and the server's (httpx/httpcore debug logs belong to the test's own client;
    # the CLI keeps those libraries at WARNING).
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("qlik_sso", "uvicorn"))
    )
    assert "handoff refused: handoff token was already used" in ours
    assert "Qlik login: ACME\\alice" in ours
    for secret in (token, own_cookie, KEY, *{r.session_id for r in sessions}):
        assert secret is not None and secret not in ours
