"""`qlik-sso demo` as a subprocess, the way a user starts it, for the browser tests.

The banner is parsed for the one URL to open and for the simulator's QPS API and test certificates,
so a test can ask Qlik itself (mutual TLS, xrfkey) which sessions a user still has.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from qlik_sso_middleware.auth._qps import QPSClient, QPSSettings

__all__ = ["DemoProcess", "running_demo"]

_START_TIMEOUT = 120.0
_STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class DemoProcess:
    """A running demo: its base URL (no trailing slash) and how to reach its simulator's QPS API."""

    url: str
    port: int
    qps_url: str
    cert_dir: Path
    banner: str

    def qps(self) -> QPSClient:
        """A QPS API client with the demo's generated test certificates (use `async with`)."""
        return QPSClient(
            QPSSettings(
                api_url=self.qps_url,
                prefix="sso",
                root=self.cert_dir / "root.pem",
                client_cert=self.cert_dir / "client.pem",
                client_key=self.cert_dir / "client_key.pem",
            )
        )


def _command() -> list[str]:
    script = Path(sys.executable).with_name("qlik-sso")
    if script.exists():  # the installed entry point, as a user runs it
        return [str(script)]
    return [sys.executable, "-m", "qlik_sso_middleware.cli"]


async def _drain(stream: asyncio.StreamReader, lines: list[str], opened: asyncio.Event) -> None:
    """Keep reading the demo's output (a full pipe would block it); remember the last lines."""
    while raw := await stream.readline():
        lines.append(raw.decode(errors="replace"))
        del lines[:-200]
        if raw.startswith(b"Open: "):
            opened.set()


@contextlib.asynccontextmanager
async def running_demo(*options: str) -> AsyncIterator[DemoProcess]:
    """Start `qlik-sso demo --port 0 [options]`, wait for its `Open:` line, stop it with SIGINT
    on exit. With `--cloud` there is no QPS API: `qps_url` is empty."""
    cloud = "--cloud" in options
    proc = await asyncio.create_subprocess_exec(
        *_command(),
        "demo",
        "--port",
        "0",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    opened = asyncio.Event()
    reader = asyncio.create_task(_drain(proc.stdout, lines, opened))
    try:
        async with asyncio.timeout(_START_TIMEOUT):
            waiter = asyncio.create_task(opened.wait())
            await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        if not opened.is_set():
            raise RuntimeError("qlik-sso demo exited during start-up:\n" + "".join(lines))
        banner = "".join(lines)
        url = next(line for line in lines if line.startswith("Open: ")).split()[1].rstrip("/")
        qps = re.search(r"QPS API\s+(https://\S+?)/qps/", banner)
        certs = re.search(r"test certificates\s+(\S+)", banner)
        port = int(url.rsplit(":", 1)[1])
        if cloud:
            yield DemoProcess(url, port, "", Path(), banner)
        elif qps is None or certs is None:
            raise RuntimeError("unexpected qlik-sso demo banner:\n" + banner)
        else:
            yield DemoProcess(url, port, qps.group(1), Path(certs.group(1)), banner)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(_STOP_TIMEOUT):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
