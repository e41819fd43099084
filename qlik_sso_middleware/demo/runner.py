"""Run the demo: simulator + demo app + middleware in one event loop, until SIGINT/SIGTERM.

Start-up prints the fixed settings and one URL to open (`Open: http://127.0.0.1:<port>/`); the
last line is printed only once everything serves, so scripts can wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import uvicorn
from starlette.types import ASGIApp

from ..testing import QlikSimulator, VirtualProxy
from .app import build_demo_app
from .settings import (
    DEMO_APP_ID,
    DEMO_DIRECTORY,
    DEMO_HEADER,
    DEMO_PASSWORD,
    DEMO_PREFIX,
    DEMO_USERS,
)

__all__ = ["DemoStartError", "run_demo", "serve_demo"]

logger = logging.getLogger("qlik_sso_middleware.demo")


class DemoStartError(Exception):
    """The demo cannot start (port taken...); the message says what to do."""


class _Server(uvicorn.Server):
    """Signals are ours (we stop the simulator too), not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise DemoStartError(
                f"port {port} on {host} is already in use: choose another with --port N"
            ) from None
        raise DemoStartError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(512)
    sock.setblocking(False)
    return sock


#: What a qlik-embed kit directory holds (`tests/js-embed/build.mjs DIR` makes one).
_KIT_FILES = ("runtime/main.js", "page/embed-web-components.js")


def check_embed_kit(kit: Path) -> Path:
    """`kit`, if it is a qlik-embed kit; else `DemoStartError` saying how to build one."""
    missing = [name for name in _KIT_FILES if not (kit / name).is_file()]
    if missing:
        raise DemoStartError(
            f"{kit} is not a qlik-embed kit (no {', '.join(missing)}): build one with "
            "`npm ci --prefix tests/js-embed && node tests/js-embed/build.mjs DIR`"
        )
    return kit


async def run_demo(
    port: int, *, out: TextIO, host: str = "127.0.0.1", embed_kit: Path | None = None
) -> int:
    """Serve the demo on `host:port` (0 = any free port) until SIGINT/SIGTERM; return 0.

    `embed_kit` (see `check_embed_kit`) adds a live `<qlik-embed>` to the home page, drawn by the
    kit's stand-in of Qlik's embed runtime, which the simulator then serves.
    """
    if embed_kit is not None:
        check_embed_kit(embed_kit)
    sock = _bind(host, port)  # first, so a taken port fails before any work
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("Starting the Qlik simulator (generating test certificates)…", file=out, flush=True)
    simulator = QlikSimulator(
        [VirtualProxy(prefix=DEMO_PREFIX, header_name=DEMO_HEADER)],
        embed_runtime=embed_kit / "runtime" if embed_kit is not None else None,
    )
    try:
        await simulator.start()
        app = build_demo_app(
            simulator.proxy_url, secret_key=secrets.token_urlsafe(32), embed_kit=embed_kit
        )
        await serve_demo(
            app, sock, stop, out, lambda: _print_banner(out, host, port, simulator, embed_kit)
        )
    finally:
        await simulator.stop()
        sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


async def serve_demo(
    app: ASGIApp, sock: socket.socket, stop: asyncio.Event, out: TextIO, started: Callable[[], None]
) -> None:
    """Serve `app` on `sock` in this event loop; call `started` (the banner) once it serves, stop
    when `stop` is set (SIGINT/SIGTERM) or the server ends."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        ws="websockets-sansio",
        ws_max_size=512 * 1024 * 1024,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise DemoStartError("the demo server stopped during start-up")
        await asyncio.sleep(0.02)
    started()
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    print("Stopping…", file=out, flush=True)
    server.should_exit = True
    stopper.cancel()
    await task


def _print_banner(
    out: TextIO, host: str, port: int, sim: QlikSimulator, embed_kit: Path | None
) -> None:
    certs = sim.certificates
    users = ", ".join(f"{u} / {DEMO_PASSWORD}" for u in DEMO_USERS)
    lines = [
        "",
        "qlik-sso demo: simulated Qlik Sense + demo app + middleware, loopback only.",
        "Fixed settings:",
        f"  virtual proxy prefix   {DEMO_PREFIX}  (mounted at /{DEMO_PREFIX}/)",
        f"  header name            {DEMO_HEADER}  (dynamic user directory, value "
        f"{DEMO_DIRECTORY}\\<user>)",
        f"  users                  {users}  (directory {DEMO_DIRECTORY})",
        "  login                  POST /login  (HTML form: username, password, csrf)",
        "  logout                 POST /logout (HTML form: csrf)",
        f"  demo Qlik app id       {DEMO_APP_ID}",
        "Qlik simulator:",
        f"  proxy                  {sim.proxy_url}/{DEMO_PREFIX}/",
    ]
    if sim.api_url and certs is not None:
        lines += [
            f"  QPS API                {sim.api_url}/qps/{DEMO_PREFIX}/",
            f"  test certificates      {certs.directory}  (root.pem, client.pem, client_key.pem)",
        ]
    if embed_kit is not None:
        lines.append(f"  qlik-embed runtime     {embed_kit / 'runtime'}  (a stand-in, not Qlik's)")
    else:
        lines.append("  qlik-embed runtime     none (Qlik's is not shipped; --embed-kit DIR)")
    lines += ["", "Stop with Ctrl-C.", f"Open: http://{host}:{port}/", ""]
    print("\n".join(lines), file=out, flush=True)
