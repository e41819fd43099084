"""`python -m benchmarks [--quick] [--duration S] [--repeat N] [--out PATH] [--no-peers]`: the run.

Starts the upstream (`benchmarks/upstream.py`), the middleware in its own uvicorn process
(`benchmarks/proxied.py`), nginx (if installed) and the installed Python peers (`benchmarks/peers.py`:
asgiproxy, fastapi-proxy-lib; `pip install -e ".[bench]"`), each in its own process, all pinned to
CPU 0; drives them from CPU 1; interleaves direct / middleware / nginx / peers for every scenario so
each ratio compares runs taken seconds apart; repeats and keeps medians; prints the tables and writes
`benchmarks/results.md`. A peer that fails a scenario gets "fails" in its cell (and a note on stderr);
`--quick` leaves the peers out unless `--peers` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from qlik_sso_middleware.target import reqwest_installed

from . import load, micro, offload, peers, procs, report
from .load import HttpResult, RssSampler

MIB = 1024 * 1024
# Bounds for a peer's single large transfer (curl --max-time): a stuck peer costs this, not 10 min.
PEER_TRANSFER_S = 300.0
T = TypeVar("T")


_UPSTREAMS = {"asgi": "benchmarks.upstream:app", "starlette": "benchmarks.upstream:starlette_app"}
#: Groups of scenarios `--scenarios` selects from.
SCENARIOS = ("stream", "http", "upload", "ws", "logins", "micro")
TARGETS = ("middleware", "aiohttp", "websockets-ws", "floor", "nginx", "offload", "offload+cache")
#: Targets a run measures unless `--targets` names others ("websockets-ws" only compares WS clients).
DEFAULT_TARGETS = frozenset(TARGETS) - {"websockets-ws"}


class Settings:
    def __init__(
        self,
        quick: bool,
        duration: float | None,
        repeat: int | None,
        upstream: str = "asgi",
        peers: bool | None = None,
        targets: frozenset[str] | None = None,
        scenarios: frozenset[str] = frozenset(SCENARIOS),
    ) -> None:
        self.quick = quick
        #: Target columns to measure (None: all); "direct" is always measured (the baseline).
        self.targets = targets
        self.scenarios = scenarios
        self.upstream = upstream
        # The smoke run (CI installs only `.[dev]`) leaves the peers out unless asked.
        self.peers = (not quick) if peers is None else peers
        self.duration = duration or (1.0 if quick else 10.0)
        self.repeat = repeat or (1 if quick else 3)
        self.stream_bytes = 64 * MIB if quick else 1024 * MIB
        self.big_upload = 16 * MIB if quick else 100 * MIB
        self.big_echo = 20 * MIB
        self.big_echo_count = 2 if quick else 10
        self.storm_users = 200 if quick else 1000
        self.first_users = 5 if quick else 30
        self.session_users = 10_000 if quick else 100_000
        self.micro_iterations = 5_000 if quick else 50_000


def _median(values: list[float]) -> float:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


def run(settings: Settings, out: Path | None) -> str:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required (apt-get install wrk)")
    started = time.monotonic()
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    extra: dict[str, float] = {}
    up_port = procs.free_port()
    upstream = procs.start(
        "direct", procs.uvicorn_argv(_UPSTREAMS[settings.upstream], up_port), up_port
    )
    stack = contextlib.ExitStack()
    stack.callback(upstream.stop)
    with stack, tempfile.TemporaryDirectory(prefix="qlik-bench-") as tmp:

        def wanted(name: str) -> bool:
            return name in (settings.targets or DEFAULT_TARGETS)

        middleware = floor = ngx = offloaded = cached = None
        if wanted("middleware") or "logins" in settings.scenarios:
            middleware = _start_proxy(
                stack, "middleware", "benchmarks.proxied:create_app", upstream
            )
        # The bare install's engine beside the [fast] one (needs pyreqwest installed to differ),
        # and the relay on aiohttp's WebSocket client: each in a process of its own.
        variants = [
            _start_proxy(stack, name, "benchmarks.proxied:create_app", upstream, env)
            for key, name, env in (
                ("aiohttp", "middleware (aiohttp)", {"QLIK_BENCH_ENGINE": "aiohttp"}),
                (
                    "websockets-ws",
                    "middleware (websockets ws)",
                    {"QLIK_BENCH_WS_CLIENT": "websockets"},
                ),
            )
            if wanted(key) and (key != "aiohttp" or reqwest_installed())
        ]
        if wanted("floor"):
            floor = _start_proxy(stack, "floor", "benchmarks.floor:create_app", upstream)
        if wanted("nginx"):
            ngx = stack.enter_context(procs.nginx(up_port))
        if wanted("offload") or wanted("offload+cache"):
            app = _start_proxy(
                stack, "offload app", "benchmarks.proxied:create_offload_app", upstream
            )
            if wanted("offload"):
                offloaded = stack.enter_context(offload.offload_nginx("offload", upstream, app))
            if wanted("offload+cache"):
                cached = stack.enter_context(
                    offload.offload_nginx(
                        "offload+cache", upstream, app, cache=offload.CACHE_SECONDS
                    )
                )
        peer_servers = _start_peers(stack, upstream, Path(tmp)) if settings.peers else []
        ours = (upstream, middleware if wanted("middleware") else None, *variants, floor, ngx)
        targets = [t for t in (*ours, offloaded, cached) if t is not None] + peer_servers
        # The benchmark user logs in once; every measurement below uses the cached session.
        for proxy in (middleware, *variants, offloaded, cached):
            if proxy is not None:
                load.curl(proxy.url + "/sso/content/_sim/bytes?size=1")
        for peer in peer_servers:  # the same first request: pools and lazy imports warmed up
            _attempt(peer, "first request", partial(_warm_up, peer))
        upload_1m = load.dense_file(tmp, MIB)
        big = load.sparse_file(tmp, settings.big_upload)
        stream_file = load.sparse_file(tmp, settings.stream_bytes)

        http_cases: list[tuple[str, str, int, Path | None]] = [
            ("GET 1 KiB, 32 conns", "/sso/content/_sim/bytes?size=1024", 32, None),
            ("GET 1 KiB, 1 conn", "/sso/content/_sim/bytes?size=1024", 1, None),
            ("GET 1 MiB, 32 conns", f"/sso/content/_sim/bytes?size={MIB}", 32, None),
            ("GET 1 MiB, 1 conn", f"/sso/content/_sim/bytes?size={MIB}", 1, None),
            ("POST 1 MiB, 1 conn", "/sso/content/_sim/upload", 1, upload_1m),
        ]
        # Streaming first, while the servers' idle RSS is that of a fresh process (after the
        # login above): measured later, it would hide under earlier high-water marks.
        if "stream" in settings.scenarios:
            for target in targets:
                _streaming(rows, target, settings, stream_file)
        if "http" not in settings.scenarios:
            http_cases = []
        for _ in range(settings.repeat):
            for name, path, conns, body in http_cases:
                for target in targets:
                    run_wrk = partial(
                        load.wrk,
                        target,
                        target.url + path,
                        connections=conns,
                        duration=settings.duration,
                        upload=body,
                    )
                    result = _attempt(target, name, run_wrk)
                    _record_http(rows, name, target, result)
            for target in targets:
                if "upload" in settings.scenarios:
                    label = f"POST {settings.big_upload // MIB} MiB (MiB/s)"
                    seconds = _attempt(target, label, partial(_upload, target, big))
                    rows[label][target.name].append(
                        settings.big_upload / MIB / seconds if seconds else float("nan")
                    )
                if "ws" in settings.scenarios:
                    _websocket(rows, target, settings)
        if middleware is not None and "logins" in settings.scenarios:
            _first_and_storm(extra, middleware, settings)
        timing = time.monotonic() - started
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {procs.SERVER_CPU})
    if "micro" in settings.scenarios:
        extra["micro_us"] = asyncio.run(micro.request_overhead_us(settings.micro_iterations))
        extra["micro_resolver_us"] = asyncio.run(micro.resolver_us(settings.micro_iterations))
        extra["session_bytes"] = micro.session_bytes(settings.session_users)
        extra["session_users"] = settings.session_users
    medians = {row: {t: _median(v) for t, v in cols.items()} for row, cols in rows.items()}
    header = _header(settings, timing, [t.name for t in targets])
    measured = [p for p in peers.PEERS if any(t.name == p.name for t in targets)]
    text = report.render(
        header,
        medians,
        extra,
        settings.stream_bytes,
        settings.storm_users,
        peers=[p.name for p in measured],
        peer_notes={p.name: f"{p.name} {p.version()} ({p.setup})" for p in measured},
    )
    if out is not None:
        out.write_text(text)
    return text


_WARM_UP = "/sso/content/_sim/bytes?size=1"
_UPLOAD = "/sso/content/_sim/upload"


def _is_peer(target: procs.Server) -> bool:
    return target.name in {p.name for p in peers.PEERS}


def _attempt(target: procs.Server, what: str, action: Callable[[], T]) -> T | None:
    """`action()`; for a peer, any failure is a note on stderr and None (a "fails" cell).

    The upstream, the middleware and nginx still raise: a failure there is a bug to see.
    """
    if not _is_peer(target):
        return action()
    try:
        return action()
    except Exception as exc:  # subprocess timeouts and errors included
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        print(f"note: {target.name} fails {what}: {lines[-1][:300]}", file=sys.stderr)
        return None


def _ok(result: tuple[float, int], *, strict: bool = True) -> float:
    """A curl transfer's seconds; a non-200 answer raises (strict) or gives 0 (a `–` cell)."""
    seconds, code = result
    if code != 200:
        if strict:
            raise RuntimeError(f"answered {code}")
        return 0.0
    return seconds


def _warm_up(target: procs.Server) -> float:
    return _ok(load.curl(target.url + _WARM_UP, max_time=60))


def _upload(target: procs.Server, body: Path) -> float:
    """Seconds for one streamed upload; a non-200 answer is 0 (a `–` cell) or, for a peer, fails."""
    result = load.curl(target.url + _UPLOAD, upload=body, max_time=_max_time(target))
    return _ok(result, strict=_is_peer(target))


def _max_time(target: procs.Server) -> float:
    return PEER_TRANSFER_S if _is_peer(target) else 600.0


def _start_proxy(
    stack: contextlib.ExitStack,
    name: str,
    factory: str,
    upstream: procs.Server,
    env: dict[str, str] | None = None,
) -> procs.Server:
    """`factory` (one of ours) in its own uvicorn process in front of `upstream`, stopped by `stack`."""
    port = procs.free_port()
    server = procs.start(
        name,
        procs.uvicorn_argv(factory, port, factory=True),
        port,
        env={"QLIK_BENCH_UPSTREAM": upstream.url, **(env or {})},
    )
    stack.callback(server.stop)
    return server


def _start_peers(
    stack: contextlib.ExitStack, upstream: procs.Server, tmp: Path
) -> list[procs.Server]:
    """Each installed peer in its own uvicorn process, pinned like the middleware."""
    started = []
    for peer in peers.PEERS:
        if not peer.installed():
            print(
                f"note: {peer.name} not installed, not measured (pip install -e '.[bench]')",
                file=sys.stderr,
            )
            continue
        port = procs.free_port()
        log = tmp / f"{peer.name}.log"
        try:
            server = procs.start(
                peer.name,
                procs.uvicorn_argv(peer.factory, port, factory=True),
                port,
                env={"QLIK_BENCH_UPSTREAM": upstream.url},
                log=log,
            )
        except RuntimeError as exc:
            tail = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            why = tail[-1] if tail else str(exc)
            print(f"note: {peer.name} did not start, not measured: {why[:300]}", file=sys.stderr)
            continue
        stack.callback(server.stop)
        started.append(server)
    return started


def _record_http(
    rows: dict[str, dict[str, list[float]]],
    name: str,
    target: procs.Server,
    r: HttpResult | None,
) -> None:
    nan = float("nan")
    if r is None:  # a peer that failed outright
        r = HttpResult(nan, nan, nan, 0, 1, nan)
    elif r.errors and _is_peer(target):
        print(f"note: {target.name} fails {name}: {r.errors} errors or non-2xx", file=sys.stderr)
        r = HttpResult(nan, nan, nan, r.requests, r.errors, nan)
    rows[f"{name} (req/s)"][target.name].append(r.rps if r.errors == 0 else nan)
    rows[f"{name} p50 (ms)"][target.name].append(r.p50_ms)
    rows[f"{name} p99 (ms)"][target.name].append(r.p99_ms)
    rows[f"{name} server CPU (µs/req)"][target.name].append(r.cpu_us_per_request)


def _websocket(rows: dict[str, dict[str, list[float]]], target: procs.Server, s: Settings) -> None:
    wait = s.duration + 60
    nan = {"rate": float("nan"), "p50_ms": float("nan"), "mib_s": float("nan")}
    rtt = _attempt(
        target,
        "WS 100 B round trips",
        lambda: load.python_client(
            ["ws-rtt", target.url, "--size", "100", "--duration", str(s.duration)], timeout=wait
        ),
    )
    rows["WS 100 B round trips (/s)"][target.name].append((rtt or nan)["rate"])
    rows["WS 100 B round trip p50 (ms)"][target.name].append((rtt or nan)["p50_ms"])
    echo = _attempt(
        target,
        "WS 1 MiB echo",
        lambda: load.python_client(
            ["ws-echo", target.url, "--size", str(MIB), "--duration", str(s.duration)],
            timeout=wait,
        ),
    )
    rows["WS 1 MiB echo (MiB/s)"][target.name].append((echo or nan)["mib_s"])
    big = _attempt(
        target,
        f"WS {s.big_echo // MIB} MiB echo",
        lambda: load.python_client(
            ["ws-echo", target.url, "--size", str(s.big_echo), "--count", str(s.big_echo_count)],
            timeout=wait + 120,
        ),
    )
    rows["WS 20 MiB echo (MiB/s)"][target.name].append((big or nan)["mib_s"])


def _streaming(
    rows: dict[str, dict[str, list[float]]], target: procs.Server, s: Settings, body: Path
) -> None:
    for label, action in _stream_actions(target, s, body):
        idle = target.rss()
        with RssSampler(target) as sampler:
            result = _attempt(target, label, action)
        if result is None:  # a peer that failed: "fails" cells
            for row in (f"{label}: peak RSS over idle (MiB)", f"{label} (MiB/s)"):
                rows[row][target.name].append(float("nan"))
            rows[f"{label}: idle RSS (MiB)"][target.name].append(idle / MIB)
            continue
        seconds, code = result
        if code != 200:
            raise RuntimeError(f"{label} through {target.name} answered {code}")
        rows[f"{label}: peak RSS over idle (MiB)"][target.name].append((sampler.peak - idle) / MIB)
        rows[f"{label}: idle RSS (MiB)"][target.name].append(idle / MIB)
        rows[f"{label} (MiB/s)"][target.name].append(s.stream_bytes / MIB / seconds)


def _stream_actions(
    target: procs.Server, s: Settings, body: Path
) -> list[tuple[str, Callable[[], tuple[float, int]]]]:
    size = s.stream_bytes
    label = f"{size // MIB} MiB" if size < 1024 * MIB else f"{size // (1024 * MIB)} GiB"
    get_url = f"{target.url}/sso/content/_sim/bytes?size={size}"
    post_url = f"{target.url}/sso/content/_sim/upload"
    limit = _max_time(target)

    def checked(result: tuple[float, int]) -> tuple[float, int]:
        if _is_peer(target):  # a peer's non-200 is a "fails" cell, through _attempt
            _ok(result)
        return result

    return [
        (f"stream {label} down", lambda: checked(load.curl(get_url, max_time=limit))),
        (f"stream {label} up", lambda: checked(load.curl(post_url, upload=body, max_time=limit))),
    ]


def _first_and_storm(extra: dict[str, float], middleware: procs.Server, s: Settings) -> None:
    first = load.python_client(
        ["first", middleware.url, "--users", str(s.first_users)], timeout=120
    )
    extra["first_ms"] = first["first_ms"]
    extra["cached_ms"] = first["cached_ms"]
    idle = middleware.rss()
    with RssSampler(middleware) as sampler:
        storm = load.python_client(
            ["storm", middleware.url, "--users", str(s.storm_users), "--duration", "120"],
            timeout=180,
        )
    extra["storm_logins_s"] = storm["logins_s"]
    extra["storm_seconds"] = storm["seconds"]
    extra["storm_errors"] = storm["errors"]
    extra["storm_rss_mib"] = (sampler.peak - idle) / MIB
    extra["storm_rss_after_mib"] = (middleware.rss() - idle) / MIB


def _header(settings: Settings, seconds: float, targets: list[str]) -> str:
    cpu = platform.processor() or platform.machine()
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    load1 = os.getloadavg()[0]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick (smoke)" if settings.quick else "full"
    return (
        f"Run {now}, {mode}: {settings.repeat} × {settings.duration:g} s per point, medians; "
        f"{os.cpu_count()} CPUs ({model or cpu}), servers pinned to CPU {procs.SERVER_CPU}, "
        f"load to CPU {procs.LOAD_CPU}; load average at the end {load1:.2f}; "
        f"Python {platform.python_version()}; upstream: {settings.upstream} "
        f"(`{_UPSTREAMS[settings.upstream]}`); targets measured: {', '.join(targets)}; "
        f"took {seconds:.0f} s."
    )


def _names(
    parser: argparse.ArgumentParser, given: str | None, known: tuple[str, ...]
) -> frozenset[str] | None:
    if given is None:
        return None
    names = frozenset(n.strip() for n in given.split(",") if n.strip())
    unknown = sorted(names - set(known))
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)} (choose from {', '.join(known)})")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI smoke run, under a minute")
    parser.add_argument("--duration", type=float, help="seconds per wrk/WebSocket point")
    parser.add_argument("--repeat", type=int, help="repetitions (medians are reported)")
    parser.add_argument(
        "--out",
        type=Path,
        help="Markdown output (default: benchmarks/results.md for a full run, none for --quick, "
        "so a smoke run never replaces the committed results)",
    )
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the installed Python peers (asgiproxy, fastapi-proxy-lib) in the same run "
        "(default: yes, except with --quick)",
    )
    parser.add_argument(
        "--upstream",
        choices=sorted(_UPSTREAMS),
        default="asgi",
        help="baseline server: raw ASGI (cheapest, default) or a typical Starlette app",
    )
    parser.add_argument(
        "--targets",
        help=f"comma-separated columns to measure besides direct ({','.join(TARGETS)}; "
        "default: all)",
    )
    parser.add_argument(
        "--scenarios",
        help=f"comma-separated scenario groups ({','.join(SCENARIOS)}; default: all)",
    )
    args = parser.parse_args()
    targets = _names(parser, args.targets, TARGETS)
    scenarios = _names(parser, args.scenarios, SCENARIOS) or frozenset(SCENARIOS)
    if not {procs.SERVER_CPU, procs.LOAD_CPU} <= procs.cpus_available():
        print("note: fewer than 2 CPUs available; processes are not pinned apart", file=sys.stderr)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {procs.LOAD_CPU})
    out = args.out
    if out is None and not args.quick and targets is None and args.scenarios is None:
        out = Path(__file__).with_name("results.md")
    settings = Settings(
        args.quick, args.duration, args.repeat, args.upstream, args.peers, targets, scenarios
    )
    print(run(settings, out))


if __name__ == "__main__":
    main()
