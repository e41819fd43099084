"""The soak's Qlik: the simulator in its own process, with a control port for the chaos.

    python -m benchmarks.soak.qlik --auth session --cert-dir DIR [--port N --api-port N --control-port N]

Prints one JSON line when it serves (`proxy_url`, `api_url`, `control_url`), then runs until
SIGTERM. The simulator tags every answer with its user (`tag_user=True`) and keeps a bounded log.
The control port (loopback, plain HTTP, JSON) is how the chaos reaches it:

| request | effect |
|---|---|
| `POST /restart` | Qlik restarts: every session, ticket and cool-down forgotten |
| `POST /fail?status=503` | every proxy-port answer is that status, until `/clear` |
| `POST /latency?seconds=12` | every proxy-port answer waits that long first, until `/clear` |
| `POST /clear` | all of the above off |
| `POST /close?code=1011` | every open WebSocket is closed with that code |
| `POST /logins` with a JSON list of users | `{user: sessions ever created}` |
| `GET /stats` | this process's RSS, open fds and asyncio tasks |
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
from typing import Any

import psutil
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy
from qlik_sso_middleware.testing.server import serve_on

__all__ = ["control_app", "main"]

#: Far more answers than any run makes: a "burst" lasts until it is cleared.
_UNTIL_CLEARED = 10**9


def process_stats() -> dict[str, int]:
    """RSS, open file descriptors and asyncio tasks of the calling process (on its loop)."""
    me = psutil.Process()
    return {
        "pid": me.pid,
        "rss": me.memory_info().rss,
        "fds": me.num_fds(),
        "tasks": len(asyncio.all_tasks()),
    }


def control_app(sim: QlikSimulator) -> Starlette:
    async def restart(request: Request) -> JSONResponse:
        sim.restart()
        return JSONResponse({"ok": True})

    async def fail(request: Request) -> JSONResponse:
        sim.faults.fail_next(int(request.query_params["status"]), _UNTIL_CLEARED)
        return JSONResponse({"ok": True})

    async def latency(request: Request) -> JSONResponse:
        sim.faults.latency = float(request.query_params["seconds"])
        return JSONResponse({"ok": True})

    async def clear(request: Request) -> JSONResponse:
        sim.faults.reset()
        return JSONResponse({"ok": True})

    async def close(request: Request) -> JSONResponse:
        closed = await sim.faults.close_websockets(int(request.query_params["code"]), "soak")
        return JSONResponse({"closed": closed})

    async def logins(request: Request) -> JSONResponse:
        users: list[str] = await request.json()
        return JSONResponse({user: sim.logins(user) for user in users})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(process_stats())

    return Starlette(
        routes=[
            Route("/restart", restart, methods=["POST"]),
            Route("/fail", fail, methods=["POST"]),
            Route("/latency", latency, methods=["POST"]),
            Route("/clear", clear, methods=["POST"]),
            Route("/close", close, methods=["POST"]),
            Route("/logins", logins, methods=["POST"]),
            Route("/stats", stats),
        ]
    )


def virtual_proxy(auth: str) -> VirtualProxy:
    """The soak's virtual proxy: a ticket VP for the QPS strategies, a header VP otherwise."""
    if auth == "header":
        return VirtualProxy(prefix="sso", header_name="hdr-usr")
    return VirtualProxy(prefix="sso", auth="ticket")


async def _run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with QlikSimulator(
        [virtual_proxy(args.auth)],
        api=args.auth != "header",
        cert_dir=args.cert_dir,
        port=args.port,
        api_port=args.api_port,
        log_limit=10_000,
        tag_user=True,
    ) as sim:
        sock = socket.create_server(("127.0.0.1", args.control_port))
        control, serving = await serve_on(control_app(sim), sock, {})
        info: dict[str, Any] = {
            "proxy_url": sim.proxy_url,
            "api_url": sim.api_url,
            "cert_dir": str(sim.certificates.directory) if sim.certificates else None,
            "control_url": f"http://127.0.0.1:{sock.getsockname()[1]}",
        }
        print(json.dumps(info), flush=True)
        await stop.wait()
        control.should_exit = True
        await serving


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak.qlik")
    parser.add_argument("--auth", choices=("session", "ticket", "header"), default="session")
    parser.add_argument("--cert-dir", required=True)
    parser.add_argument("--port", type=int, default=0, help="proxy port (default: any free)")
    parser.add_argument("--api-port", type=int, default=0, help="QPS API port (default: any free)")
    parser.add_argument("--control-port", type=int, default=0, help="control port (default: any)")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
