"""Load clients the harness runs as subprocesses on the load CPU; each prints one JSON line.

    python -m benchmarks.clients ws-rtt  URL --size 100 --duration 5 [--conns 1]
    python -m benchmarks.clients ws-echo URL --size 1048576 --count 50 --duration 5
    python -m benchmarks.clients first   URL --users 20
    python -m benchmarks.clients storm   URL --users 1000

Every loop is bounded by a count and a deadline. The login cookie is `app_user=<name>`; WebSocket
handshakes carry an `Origin` equal to the server's own, as a browser on the app's page would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from urllib.parse import urlsplit

import aiohttp
import uvloop
from websockets.asyncio.client import connect

from .report import percentile

_BYTES_PATH = "/sso/content/_sim/bytes?size=1024"
_ECHO_PATH = "/sso/app/_sim_echo"


def _ws(base: str, user: str = "bench") -> tuple[str, dict[str, str]]:
    parts = urlsplit(base)
    url = f"ws://{parts.netloc}{_ECHO_PATH}"
    return url, {"Cookie": f"app_user={user}", "Origin": f"http://{parts.netloc}"}


async def ws_rtt(base: str, size: int, duration: float, conns: int, cap: int) -> dict[str, float]:
    url, headers = _ws(base)
    payload = "x" * size
    latencies: list[float] = []
    deadline = time.monotonic() + duration

    async def one() -> None:
        async with connect(url, additional_headers=headers, max_size=None, compression=None) as ws:
            for _ in range(3):  # warm-up
                await ws.send(payload)
                await ws.recv()
            while time.monotonic() < deadline and len(latencies) < cap:
                started = time.perf_counter()
                await ws.send(payload)
                await ws.recv()
                latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(conns)))
    elapsed = time.monotonic() - started
    return {
        "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "count": len(latencies),
    }


async def ws_echo(base: str, size: int, count: int, duration: float) -> dict[str, float]:
    url, headers = _ws(base)
    payload = os.urandom(size)
    done = 0
    async with connect(url, additional_headers=headers, max_size=None, compression=None) as ws:
        await ws.send(payload)
        assert len(await ws.recv()) == size
        started = time.monotonic()
        deadline = started + duration
        while done < count and time.monotonic() < deadline:
            await ws.send(payload)
            echoed = await ws.recv()
            if len(echoed) != size:
                raise RuntimeError("echo of the wrong size")
            done += 1
        elapsed = time.monotonic() - started
    return {"mib_s": done * size / elapsed / 2**20, "messages": done}


async def first_request(base: str, users: int) -> dict[str, float]:
    """Latency of a new user's first request (login included) and of their second (cached)."""
    nonce = os.urandom(4).hex()
    first: list[float] = []
    second: list[float] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for i in range(users):
            headers = {"Cookie": f"app_user=first-{nonce}-{i}"}
            for bucket in (first, second):
                started = time.perf_counter()
                async with http.get(base + _BYTES_PATH, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"status {response.status}")
                bucket.append(time.perf_counter() - started)
    return {
        "first_ms": statistics.median(first) * 1e3,
        "cached_ms": statistics.median(second) * 1e3,
    }


async def storm(base: str, users: int, limit_s: float) -> dict[str, float]:
    """`users` distinct users' first requests, all at once (one connection each)."""
    nonce = os.urandom(4).hex()
    connector = aiohttp.TCPConnector(limit=0)
    errors = 0
    async with aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=limit_s),
    ) as http:
        gate = asyncio.Event()

        async def one(i: int) -> None:
            nonlocal errors
            await gate.wait()
            headers = {"Cookie": f"app_user=storm-{nonce}-{i}", "Connection": "close"}
            try:
                async with http.get(base + _BYTES_PATH, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1

        tasks = [asyncio.create_task(one(i)) for i in range(users)]
        await asyncio.sleep(0)
        started = time.monotonic()
        gate.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    return {"logins_s": (users - errors) / elapsed, "seconds": elapsed, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["ws-rtt", "ws-echo", "first", "storm"])
    parser.add_argument("url")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--conns", type=int, default=1)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    if args.kind == "ws-rtt":
        coro = ws_rtt(args.url, args.size, args.duration, args.conns, args.count)
    elif args.kind == "ws-echo":
        coro = ws_echo(args.url, args.size, args.count, args.duration)
    elif args.kind == "first":
        coro = first_request(args.url, args.users)
    else:
        coro = storm(args.url, args.users, limit_s=max(30.0, args.duration))
    print(json.dumps(uvloop.run(coro)))


if __name__ == "__main__":
    main()
