"""Load generators, pinned to `LOAD_CPU`: wrk for HTTP, curl for huge bodies, our clients for the rest.

Every run is bounded in time (wrk `-d`, curl `--max-time`, subprocess timeouts) and returns the
server's CPU seconds used while it ran, read from /proc (utime + stime of the process tree).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import _REPO, LOAD_CPU, Server

COOKIE = "app_user=bench"


def _pinned() -> None:
    os.sched_setaffinity(0, {LOAD_CPU})


@dataclass
class HttpResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us_per_request: float


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _latency_ms(text: str, pct: str) -> float:
    match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


_UPLOAD_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
local f = io.open("{path}", "rb")
wrk.body = f:read("*all")
f:close()
"""


def wrk(
    server: Server,
    url: str,
    *,
    connections: int,
    duration: float,
    upload: Path | None = None,
) -> HttpResult:
    """wrk -t1 against `url` with the app's login cookie; CPU is `server`'s during the run."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "30s",
        "-H",
        f"Cookie: {COOKIE}",
    ]
    script = None
    if upload is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write(_UPLOAD_LUA.format(path=upload))
        script.close()
        argv += ["-s", script.name]
    cpu0 = server.cpu_seconds()
    try:
        out = subprocess.run(
            [*argv, url],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            preexec_fn=_pinned,
            check=True,
        ).stdout
    finally:
        if script is not None:
            os.unlink(script.name)
    cpu = server.cpu_seconds() - cpu0
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    for match in re.finditer(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return HttpResult(
        rps=rps,
        p50_ms=_latency_ms(out, "50"),
        p99_ms=_latency_ms(out, "99"),
        requests=requests,
        errors=errors,
        cpu_us_per_request=cpu / max(requests, 1) * 1e6,
    )


def sparse_file(directory: str, size: int) -> Path:
    """A file of `size` zero bytes that costs no disk (reading it is cheap for the client)."""
    path = Path(directory) / f"body-{size}"
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def dense_file(directory: str, size: int) -> Path:
    path = Path(directory) / f"dense-{size}"
    path.write_bytes(bytes(range(256)) * (size // 256))
    return path


class RssSampler:
    """Samples a server's RSS every few ms in a thread; `peak` is the highest seen."""

    def __init__(self, server: Server, interval: float = 0.005) -> None:
        self.server = server
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = self.server.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss())


def curl(url: str, *, upload: Path | None = None, max_time: float = 600) -> tuple[float, int]:
    """One transfer with curl (download to /dev/null, or streamed upload); (seconds, http code)."""
    curl_bin = shutil.which("curl")
    if curl_bin is None:
        raise RuntimeError("curl is needed for the large-body measurements")
    argv = [
        curl_bin,
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{time_total}",
        "--max-time",
        str(max_time),
        "-H",
        f"Cookie: {COOKIE}",
    ]
    if upload is not None:
        # -T streams the file; no "Expect: 100-continue" round trip.
        argv += ["-X", "POST", "-T", str(upload), "-H", "Expect:"]
    out = subprocess.run(
        [*argv, url],
        capture_output=True,
        text=True,
        timeout=max_time + 30,
        preexec_fn=_pinned,
        check=False,
    ).stdout
    code, seconds = out.split()
    return float(seconds), int(code)


def python_client(args: list[str], timeout: float) -> dict[str, float]:
    """Run `python -m benchmarks.clients ARGS` on the load CPU; its last stdout line is JSON."""
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.clients", *args],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_pinned,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"client {args[0]} failed: {out.stderr.strip()[-500:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result.setdefault("wall", time.monotonic() - started)
    return result
