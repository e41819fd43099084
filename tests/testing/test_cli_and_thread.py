"""`qlik-sso simulate` as a real subprocess, and `SimulatorThread` from synchronous code."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import httpx2 as httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from qlik_sso_middleware.testing import ManualClock, SimulatorThread, VirtualProxy
from qlik_sso_middleware.testing.cli import main

USER = "ACME\\alice"


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qlik_sso_middleware.testing.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _first_line(process: subprocess.Popen[str]) -> str:
    """The first stdout line, bounded: the process is killed if none comes within 60 s."""
    timer = threading.Timer(60, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        return process.stdout.readline()
    finally:
        timer.cancel()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_json_serves_and_stops_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "main.js").write_text("window.QlikMain = {};\n")
    process = _start(
        *("--json", "--prefix", "sso", "--prefix", "other", "--cert-dir", str(tmp_path)),
        *("--embed-runtime", str(runtime)),
    )
    try:
        info = json.loads(_first_line(process))
        response = httpx.get(
            info["proxy_url"] + "/other/qps/user", headers={"hdr-usr": USER}, timeout=30
        )
        assert response.json()["userId"] == "alice"
        main_js = httpx.get(
            info["proxy_url"] + "/sso/qlik-embed/main.js", headers={"hdr-usr": USER}, timeout=30
        )
        assert main_js.text == "window.QlikMain = {};\n"
        assert [vp["prefix"] for vp in info["virtual_proxies"]] == ["sso", "other"]
        assert info["api_url"].startswith("https://127.0.0.1:")
        assert info["cert_dir"] == str(tmp_path)
        assert (tmp_path / "client.pfx").is_file()
        process.send_signal(sig)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_toml_config_and_readable_output(tmp_path: Path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text(
        'https = true\n[[virtual_proxy]]\nprefix = "hdr"\nheader_name = "X-Remote-User"\n'
        'additional_response_headers = [["X-Frame-Options", "DENY"]]\n',
        encoding="utf-8",
    )
    process = _start("--config", str(config), "--cert-dir", str(tmp_path / "certs"), "--no-api")
    try:
        line = _first_line(process)
        assert line.startswith("Qlik simulator proxy: https://127.0.0.1:")
        url = line.split(": ", 1)[1].strip()
        context = ssl.create_default_context(cafile=str(tmp_path / "certs" / "root.pem"))
        response = httpx.get(
            url + "/hdr/hub/", headers={"X-Remote-User": USER}, verify=context, timeout=30
        )
        assert response.status_code == 200
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["set-cookie"].startswith("X-Qlik-Session-hdr=")
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_rejects_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[virtual_proxy]]\nprefix = "sales/eu"\n', encoding="utf-8")
    assert main(["--config", str(config)]) == 2
    assert "prefix" in capsys.readouterr().err
    config.write_text("[[virtual_proxy]]\nnot_an_option = 1\n", encoding="utf-8")
    assert main(["--config", str(config)]) == 2


def test_simulator_thread_from_sync_code() -> None:
    clock = ManualClock()
    with SimulatorThread([VirtualProxy(session_timeout=60)], clock=clock, api=False) as sim:
        with httpx.Client(base_url=sim.proxy_url) as client:
            assert client.get("/sso/hub/", headers={"hdr-usr": USER}).status_code == 200
            assert sim.logins(USER) == 1
            assert len(sim.live_sessions(USER)) == 1
            assert sim.requests[-1].user == USER
            clock.advance(61)
            assert sim.live_sessions() == []
            assert client.get("/sso/hub/").status_code == 302
            assert client.get("/sso/hub/", headers={"hdr-usr": USER}).status_code == 200
            sim.restart()
            assert sim.live_sessions() == []
            sim.clear_log()
            assert sim.requests == []
            assert sim.close_websockets(1000) == 0
            _ = client.get("/sso/hub/", headers={"hdr-usr": USER})
            session_id = client.cookies[sim.cookie_name()]
            token = client.get("/sso/qps/csrftoken").headers["qlik-csrf-token"]
        url = sim.proxy_url.replace("http", "ws", 1) + f"/sso/app/_sim_echo?qlik-csrf-token={token}"
        cookie = f"{sim.cookie_name()}={session_id}"
        with ws_connect(url, additional_headers={"Cookie": cookie}, open_timeout=30) as ws:
            ws.send("ping")
            assert ws.recv(timeout=30) == "ping"
            # from another event loop than the simulator's
            assert asyncio.run(sim.faults.close_websockets(4003, "bye")) == 1
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=30)
            assert (ws.close_code, ws.close_reason) == (4003, "bye")
    with pytest.raises(RuntimeError):
        _ = sim.proxy_url


def test_cli_port_in_use_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with SimulatorThread(api=False) as sim:
        assert main(["--port", str(sim.proxy_port), "--no-api"]) == 1
    assert "cannot start" in capsys.readouterr().err
