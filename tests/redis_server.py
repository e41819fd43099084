"""A real Redis for tests: `REDIS_URL` if set, else a private `redis-server` on a free port.

`redis_url` is a session fixture (import it into a conftest). Without `REDIS_URL` and without
`redis-server` on PATH the tests that need Redis skip, except when `CI` is set: then a missing Redis
is a failure, never a skip. `RedisServer` lets failure tests start, pause, kill and restart their
own server on a fixed port. `redis_cluster_node` is a private three-primary Redis Cluster (always
started from `redis-server`; `host:port` of one node).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .needs import unavailable

__all__ = [
    "RedisCluster",
    "RedisSentinel",
    "RedisServer",
    "free_port",
    "redis_cluster_node",
    "redis_url",
    "require_redis_server",
]

_START_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_redis_server() -> str:
    """Path of `redis-server`, or skip (fail when `CI` is set) if it is not installed."""
    path = shutil.which("redis-server")
    if path is None:
        unavailable("redis-server is not on PATH and REDIS_URL is not set")
    return path


def _command(port: int, *args: str) -> bytes:
    """One command over a fresh socket, as RESP; the reply's first 64 KiB (enough for tests)."""
    request = f"*{len(args)}\r\n".encode()
    for arg in args:
        request += f"${len(arg.encode())}\r\n{arg}\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def _ping(port: int) -> bool:
    try:
        return _command(port, "PING").startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One `redis-server` process on 127.0.0.1:`port`, no persistence, stopped by PID."""

    def __init__(
        self, executable: str, port: int | None = None, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.executable = executable
        self.extra_args = extra_args
        # An automatic port may be taken by someone else between probe and bind: then retry.
        self._may_move = port is None
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="qlik-sso-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait (bounded) until it answers PING; later starts reuse the port."""
        for attempt in range(3):
            try:
                self._start()
                break
            except RuntimeError:
                if not self._may_move or attempt == 2:
                    raise
                self.port = free_port()
        self._may_move = False

    def _start(self) -> None:
        args = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
            "--logfile",
            str(Path(self._dir.name, "redis.log")),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while not _ping(self.port):
            if self.process.poll() is not None:
                log = Path(self._dir.name, "redis.log")
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.02)

    def pause(self) -> None:
        """SIGSTOP: the socket stays open but nothing answers (a hung server)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kill by PID (a paused server is resumed first so it can die) and reap it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGCONT)
        process.kill()
        process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


class RedisCluster:
    """Three cluster-enabled `redis-server`s, slots split evenly, joined with CLUSTER MEET."""

    def __init__(self, executable: str) -> None:
        # The cluster bus defaults to port + 10000, which may be taken or above 65535.
        self.bus_ports = [free_port() for _ in range(3)]
        self.servers = [
            RedisServer(
                executable, extra_args=("--cluster-enabled", "yes", "--cluster-port", str(bus))
            )
            for bus in self.bus_ports
        ]

    @property
    def node(self) -> str:
        return f"127.0.0.1:{self.servers[0].port}"

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.close()  # never leave a half-started cluster behind
            raise

    def _start(self) -> None:
        for server in self.servers:
            server.start()
        bounds = [(0, 5460), (5461, 10922), (10923, 16383)]
        for server, (low, high) in zip(self.servers, bounds, strict=True):
            _command(server.port, "CLUSTER", "ADDSLOTSRANGE", str(low), str(high))
        for server, bus in zip(self.servers[1:], self.bus_ports[1:], strict=True):
            _command(
                self.servers[0].port, "CLUSTER", "MEET", "127.0.0.1", str(server.port), str(bus)
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while not all(
            b"cluster_state:ok" in _command(server.port, "CLUSTER", "INFO")
            for server in self.servers
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the test Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def close(self) -> None:
        for server in self.servers:
            server.close()


class RedisSentinel:
    """A `redis-server --sentinel` watching `master` as service `name` (quorum 1)."""

    def __init__(self, executable: str, master: RedisServer, name: str = "mymaster") -> None:
        self.name = name
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="qlik-sso-sentinel-")
        config = Path(self._dir.name, "sentinel.conf")
        # Sentinel rewrites its configuration file, so it must be a private, writable copy.
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self._dir.name}\n"
            f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
        )
        self.process = subprocess.Popen(
            [executable, str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while not _ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("redis sentinel did not start")
            time.sleep(0.02)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._dir.cleanup()


@pytest.fixture(scope="session")
def redis_cluster_node() -> Iterator[str]:
    """`host:port` of one node of a private three-node Redis Cluster for this test session."""
    cluster = RedisCluster(require_redis_server())
    cluster.start()
    try:
        yield cluster.node
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis for this test session; tests isolate themselves with unique key prefixes."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer(require_redis_server())
    try:
        server.start()
        yield server.url
    finally:
        server.close()
