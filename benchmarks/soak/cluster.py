"""The soak's processes: Redis, the simulator and two app instances, each its own, on loopback.

Everything is started, killed and restarted by its own PID (SIGKILL for the chaos, SIGTERM at
the end), on the same ports each time, as a process supervisor would; nothing by name. Each
process writes its stderr to a log file per start (`<name>.<generation>.log`) in the run's
directory, where `logs()` finds them for the exception count. Calls block (they wait for ports):
the run calls them in a thread.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

from qlik_sso_middleware.stores.redis import Sealer

from .. import procs

__all__ = ["Cluster"]

INSTANCES = 2


@dataclass
class _Slot:
    """One supervised process: its command, port, current process and how often it started."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    server: procs.Server | None = None
    generation: int = 0


class Cluster:
    """Redis, the Qlik simulator (with its control port) and `INSTANCES` app instances."""

    def __init__(
        self,
        directory: Path,
        *,
        auth: str = "session",
        ws_client: str | None = None,
        log_level: str | None = None,
        cross_user_every: int = 0,
    ):
        redis = shutil.which("redis-server")
        if redis is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.directory = directory
        qlik_port, api_port, control_port = procs.free_port(), procs.free_port(), procs.free_port()
        self.control_url = f"http://127.0.0.1:{control_port}"
        redis_port = procs.free_port()
        self.redis = _Slot(
            "redis",
            [
                *(redis, "--port", str(redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--logfile", ""),
            ],
            redis_port,
        )
        self.qlik = _Slot(
            "qlik",
            [
                *(sys.executable, "-m", "benchmarks.soak.qlik", "--auth", auth),
                *("--cert-dir", str(directory / "certs"), "--port", str(qlik_port)),
                *("--api-port", str(api_port), "--control-port", str(control_port)),
            ],
            control_port,
        )
        env = {
            "QLIK_URL": f"http://127.0.0.1:{qlik_port}",
            "QLIK_API_URL": f"https://127.0.0.1:{api_port}",
            "QLIK_CERT_DIR": str(directory / "certs"),
            "SOAK_AUTH": auth,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "SEAL_KEY": Sealer.generate_key(),
            "SOAK_CROSS_USER_EVERY": str(cross_user_every),
        }
        if ws_client is not None:
            env["SOAK_WS_CLIENT"] = ws_client
        if log_level is not None:
            env["SOAK_LOG_LEVEL"] = log_level
        self.instances = []
        for index in range(INSTANCES):
            port = procs.free_port()
            argv = procs.uvicorn_argv("benchmarks.soak.instance:create_app", port, factory=True)
            self.instances.append(_Slot(f"instance-{index}", argv, port, env))

    @property
    def instance_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{slot.port}" for slot in self.instances]

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start everything (Redis and Qlik before the instances that need them)."""
        self._start(self.redis)
        self._start(self.qlik)
        for slot in self.instances:
            self._start(slot)

    def stop(self) -> None:
        """SIGTERM every process (instances first, so their last requests reach Qlik)."""
        for slot in [*self.instances, self.qlik, self.redis]:
            if slot.server is not None:
                slot.server.stop()
                slot.server = None

    def _start(self, slot: _Slot) -> None:
        slot.generation += 1
        log = self.directory / f"{slot.name}.{slot.generation}.log"
        slot.server = procs.start(
            slot.name, slot.argv, slot.port, env=slot.env, log=log, pinned=False
        )
        if slot in self.instances:
            self._wait_healthy(slot)

    @staticmethod
    def _wait_healthy(slot: _Slot) -> None:
        url = f"http://127.0.0.1:{slot.port}/health"
        for _ in range(600):  # bounded: 60 s at most
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{slot.name} did not become healthy")

    @staticmethod
    def _kill(slot: _Slot) -> None:
        if slot.server is not None:
            slot.server.proc.kill()  # SIGKILL: no goodbye, like a crash or an OOM kill
            slot.server.proc.wait(10)
            slot.server = None

    # -- the chaos ------------------------------------------------------------------------------

    def kill_redis(self) -> None:
        self._kill(self.redis)

    def start_redis(self) -> None:
        """Redis again on the same port, empty (no persistence): every cached session is gone."""
        self._start(self.redis)

    def kill_instance(self, index: int) -> None:
        self._kill(self.instances[index])

    def start_instance(self, index: int) -> int:
        """Start instance `index` again on its port; returns its generation (starts so far)."""
        self._start(self.instances[index])
        return self.instances[index].generation

    def generation(self, index: int) -> int:
        return self.instances[index].generation

    def pid(self, index: int) -> int | None:
        server = self.instances[index].server
        return server.proc.pid if server is not None else None

    def logs(self) -> dict[str, list[Path]]:
        """Every log file per process name (one per start)."""
        found: dict[str, list[Path]] = {}
        for slot in [self.qlik, *self.instances]:
            found[slot.name] = sorted(self.directory.glob(f"{slot.name}.*.log"))
        return found
