"""The processes a benchmark run starts: pinned, on loopback, stopped by PID, accounted from /proc.

Servers run on `SERVER_CPU`, load generators on `LOAD_CPU` (`os.sched_setaffinity` before exec), so
the proxy and the load never share a core. Every process started here is stopped by its own PID in
`stop()`; nothing is killed by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil

SERVER_CPU = 0
LOAD_CPU = 1
_REPO = Path(__file__).resolve().parent.parent


def cpus_available() -> set[int]:
    return set(os.sched_getaffinity(0))


def _pin(cpu: int) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class Server:
    """One started process tree; `cpu_seconds()` and `rss()` cover the process and its children."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int) -> None:
        self.name = name
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._ps = psutil.Process(proc.pid)

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self._ps, *self._ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def rss(self) -> int:
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start(
    name: str,
    argv: Sequence[str],
    port: int,
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    pinned: bool = True,
) -> Server:
    """Start `argv` (pinned to `SERVER_CPU` unless `pinned` is False) and wait for `port`; stderr
    goes to `log` if given."""
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(open(log, "wb")) if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(
            list(argv),
            cwd=_REPO,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=(lambda: _pin(SERVER_CPU)) if pinned else None,
        )
    server = Server(name, proc, port)
    try:
        wait_for_port(port, proc)
    except BaseException:
        server.stop()
        raise
    return server


def uvicorn_argv(app: str, port: int, *, factory: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    if factory:
        argv.append("--factory")
    return [
        *argv,
        "--ws",
        "websockets-sansio",
        "--ws-max-size",
        str(256 * 1024 * 1024),
        "--log-level",
        "warning",
        "--no-access-log",
        "--backlog",
        "4096",
        "--timeout-keep-alive",
        "30",
    ]


_NGINX_MAIN = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{http}
}}
"""

_NGINX_PROXY = """
    client_max_body_size 0;
    upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 300s;
        }}
    }}
"""


def write_nginx_conf(tmp: Path, http: str) -> Path:
    """An nginx.conf running from `tmp` (its pid, logs and temp dirs there) whose `http { }` block
    is `http`; returns its path. Shared with the offload tests (tests/offload/front.py)."""
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "auth-cache"):
        (tmp / sub).mkdir(exist_ok=True)
        os.chmod(tmp / sub, 0o777)  # the worker may run as nobody
    os.chmod(tmp, 0o755)
    conf = tmp / "nginx.conf"
    conf.write_text(_NGINX_MAIN.format(tmp=tmp, http=http))
    return conf


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )


@contextlib.contextmanager
def nginx(upstream_port: int) -> Iterator[Server | None]:
    """nginx (one worker, default buffers, keep-alive to the upstream) in a temp dir, or None."""
    binary = nginx_binary()
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="qlik-bench-nginx-") as tmp:
        port = free_port()
        http = _NGINX_PROXY.format(upstream=upstream_port, port=port)
        conf = write_nginx_conf(Path(tmp), http)
        server = start("nginx", [binary, "-c", str(conf), "-p", tmp], port)
        try:
            yield server
        finally:
            server.stop()
