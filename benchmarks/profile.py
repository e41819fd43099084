"""CPU profile of the middleware under wrk load: `python -m benchmarks.profile [--size 1024]`.

Runs the benchmark app (`benchmarks/proxied.py`) in this process under uvicorn, pinned to CPU 0,
against the upstream (its own process, CPU 1, like wrk), and profiles the event loop with cProfile
using a CPU clock (`time.process_time`), so time the kernel gives to other processes is not charged
to the proxy (py-spy samples wall time and does). Prints the functions by cumulative CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import threading
import time
from typing import Any

import uvicorn

from . import procs
from .load import COOKIE


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("--size", type=int, default=1024, help="response size in bytes")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument(
        "--sort", default="cumulative", help="cProfile sort key (tottime: self time)"
    )
    args = parser.parse_args()
    up_port, port = procs.free_port(), procs.free_port()
    upstream = procs.start(
        "upstream", procs.uvicorn_argv("benchmarks.upstream:app", up_port), up_port
    )
    try:
        os.environ["QLIK_BENCH_UPSTREAM"] = upstream.url
        os.sched_setaffinity(upstream.proc.pid, {procs.LOAD_CPU})
        os.sched_setaffinity(0, {procs.SERVER_CPU})
        from .proxied import create_app

        inner = create_app()
        loops: list[asyncio.AbstractEventLoop] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if not loops and scope["type"] == "http":
                loops.append(asyncio.get_running_loop())
            await inner(scope, receive, send)

        config = uvicorn.Config(app, port=port, log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        profile = cProfile.Profile(time.process_time)
        url = f"http://127.0.0.1:{port}/sso/content/_sim/bytes?size={args.size}"
        summary: list[str] = []

        def wrk(seconds: int) -> str:
            return subprocess.run(
                ["wrk", "-t1", "-c32", f"-d{seconds}s", "-H", f"Cookie: {COOKIE}", url],
                capture_output=True,
                text=True,
                timeout=seconds + 60,
                preexec_fn=lambda: os.sched_setaffinity(0, {procs.LOAD_CPU}),
                check=True,
            ).stdout

        def load() -> None:
            try:
                while not server.started:
                    time.sleep(0.05)
                wrk(2)  # warm-up: login, pool, caches
                loops[0].call_soon_threadsafe(profile.enable)
                out = wrk(args.seconds)
                loops[0].call_soon_threadsafe(profile.disable)
                time.sleep(0.2)
                summary.extend(line for line in out.splitlines() if "requests in" in line)
            finally:
                server.should_exit = True

        threading.Thread(target=load, daemon=True).start()
        server.run()
    finally:
        upstream.stop()
    print(*summary)
    stats = pstats.Stats(profile)
    stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
