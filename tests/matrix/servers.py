"""Start an ASGI app under each server this project supports, as a real process on loopback.

Servers and how each is started (the way their docs say to run an ASGI app):
- uvicorn  `python -m uvicorn MODULE:ATTR --ws websockets-sansio`
- hypercorn `python -m hypercorn MODULE:ATTR`
- granian  `python -m granian --interface asgi MODULE:ATTR`
- daphne   `python -m daphne MODULE:ATTR`
Every one binds 127.0.0.1 on a free port, logs to a temporary file (shown if it exits early) and
is stopped by its PID (SIGINT, then SIGKILL after 20 s).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from pathlib import Path

import httpx2 as httpx

from ..servers import free_port

SERVERS = ("uvicorn", "hypercorn", "granian", "daphne")
ROOT = Path(__file__).resolve().parents[2]


def server_version(server: str) -> str:
    return version("Hypercorn" if server == "hypercorn" else server)


def command(server: str, app: str, port: int, *, factory: bool = False) -> list[str]:
    """argv that serves ASGI `app` ("module:attr") on 127.0.0.1:`port` with `server`; with
    `factory`, `attr` is a function that returns the app (daphne cannot call one)."""
    host = "127.0.0.1"
    if server == "uvicorn":
        # The sans-io WebSocket implementation only spares the legacy one's deprecation warnings.
        extra = ["--ws", "websockets-sansio", *(["--factory"] if factory else [])]
        return ["-m", "uvicorn", app, "--host", host, "--port", str(port), *extra]
    if server == "hypercorn":
        return ["-m", "hypercorn", app + ("()" if factory else ""), "--bind", f"{host}:{port}"]
    if server == "granian":
        extra = ["--factory"] if factory else []
        return [
            "-m", "granian", "--interface", "asgi", "--host", host, "--port", str(port), *extra, app
        ]  # fmt: skip
    if factory:
        raise ValueError(f"{server} cannot call an app factory")
    if server == "daphne":
        return ["-m", "daphne", "-b", host, "-p", str(port), app]
    raise ValueError(f"unknown server {server!r}")


@contextlib.contextmanager
def serving(
    server: str,
    app: str,
    env: Mapping[str, str],
    *,
    cwd: Path = ROOT,
    ready_path: str = "/",
) -> Iterator[str]:
    """Run `app` under `server`; wait until `ready_path` answers (any status); yield the base URL.

    Synchronous, so module-scoped fixtures can hold one server for many tests."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, *command(server, app, port)],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(timeout=2) as probe:
                for _ in range(600):  # bounded: 60 s at most on a loaded machine
                    if process.poll() is not None:
                        log.seek(0)
                        output = log.read().decode(errors="replace")
                        raise AssertionError(f"{server} exited early:\n{output}")
                    with contextlib.suppress(httpx.TransportError):
                        probe.get(url + ready_path)
                        break
                    time.sleep(0.1)
                else:
                    raise AssertionError(f"{server} did not answer within 60 s")
            yield url
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
