"""Where the middleware's CPU goes above the floor: `python -m benchmarks.overhead [--rounds 5]`.

Starts the upstream, the floor (`benchmarks/floor.py`), the floor made to spend 20 and 40 µs of
pure-Python CPU per request first (`QLIK_BENCH_FLOOR_BURN_US`), and the middleware, each in its own
uvicorn process pinned to CPU 0, then runs wrk (1 KiB GET, 32 connections, CPU 1) against each in
turn, `--rounds` times, and prints the median server CPU per request of each.

What it showed (2026-11-28, AMD EPYC VM, two runs): floor 94 / 117 µs, floor + 20 µs of Python
144 / 142 µs, floor + 40 µs 170 / 171 µs, middleware 161 / 164 µs, while the middleware's own Python
work is ~20 µs per request in-process (`benchmarks/micro.py`, and the whole middleware on a canned
engine). The pyreqwest engine completes each await on its own Rust thread, which needs the GIL to
hand the result back; the longer the event loop's thread holds the GIL per request, the more of
those hand-offs wait and switch threads, so on one core each µs of Python above the floor costs
1.3–2.5 µs of process CPU.
"""

from __future__ import annotations

import argparse
import statistics

from . import load, procs

_PATH = "/sso/content/_sim/bytes?size=1024"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    up_port = procs.free_port()
    upstream = procs.start(
        "direct", procs.uvicorn_argv("benchmarks.upstream:app", up_port), up_port
    )
    variants = [
        ("floor", "benchmarks.floor:create_app", "0"),
        ("floor + 20 µs Python", "benchmarks.floor:create_app", "20"),
        ("floor + 40 µs Python", "benchmarks.floor:create_app", "40"),
        ("middleware", "benchmarks.proxied:create_app", "0"),
    ]
    servers: list[procs.Server] = []
    try:
        for name, app, burn in variants:
            port = procs.free_port()
            env = {"QLIK_BENCH_UPSTREAM": upstream.url, "QLIK_BENCH_FLOOR_BURN_US": burn}
            servers.append(
                procs.start(name, procs.uvicorn_argv(app, port, factory=True), port, env=env)
            )
        cpu: dict[str, list[float]] = {s.name: [] for s in servers}
        for server in servers:  # warm-up: pools filled, the benchmark user logged in
            load.wrk(server, server.url + _PATH, connections=32, duration=1)
        for _ in range(args.rounds):
            for server in servers:
                result = load.wrk(
                    server, server.url + _PATH, connections=32, duration=args.duration
                )
                if result.errors:
                    raise SystemExit(f"{server.name}: {result.errors} errors")
                cpu[server.name].append(result.cpu_us_per_request)
        print("server CPU per 1 KiB request, 32 connections (median of the rounds):")
        for name, values in cpu.items():
            runs = ", ".join(f"{v:.0f}" for v in values)
            print(f"  {name:22} {statistics.median(values):6.1f} µs  [{runs}]")
    finally:
        for server in servers:
            server.stop()
        upstream.stop()


if __name__ == "__main__":
    main()
