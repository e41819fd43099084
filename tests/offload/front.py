"""Real nginx and Caddy in front of a test app, configured by `qlik-sso front-config`'s own code.

Each server runs from a temporary directory on a free loopback port, is started as a child
process and stopped by its PID. A missing binary skips the test, except under CI, where it fails
(`.ci/run` installs both).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from benchmarks.procs import write_nginx_conf
from qlik_sso_middleware.config import load_config
from qlik_sso_middleware.offload.front_config import plan_from_config, render

from ..needs import unavailable
from ..servers import free_port

SECRET = "front-proxy-test-secret-0123456789abcdef"
SERVERS = ("nginx", "caddy")


def binary(server: str) -> str:
    """The server's executable; skips (fails under CI) when it is not installed."""
    found = shutil.which(server) or next(
        (p for p in (f"/usr/sbin/{server}", f"/usr/bin/{server}") if os.path.exists(p)), None
    )
    if found is None:
        unavailable(f"{server} is not installed (apt-get install {server}; .ci/run does)")
    return found


def write_config(
    tmp: Path, *, qlik_url: str, app_url: str, listen: int, cache_seconds: float = 0, **qlik: str
) -> Path:
    lines = ["[qlik]", f'url = "{qlik_url}"', 'prefix = "sso"']
    lines += [f'{k} = "{v}"' for k, v in qlik.items()]
    lines += [
        "[offload]",
        f'secret = "{SECRET}"',
        f'app_url = "{app_url}"',
        f'listen = "127.0.0.1:{listen}"',
        f"auth_cache_seconds = {cache_seconds}",
        f'auth_cache_dir = "{tmp}/auth-cache"',
    ]
    path = tmp / "qlik-sso.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(1500):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {await asyncio.to_thread(_tail, log)}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child process by its PID: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_server(server: str, tmp: Path, config_text: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Write `config_text` (the front-config output) into `tmp` and start `server` on it."""
    exe = binary(server)
    log = tmp / "server.log"
    if server == "nginx":
        conf = write_nginx_conf(tmp, config_text)
        argv = [exe, "-c", str(conf), "-p", str(tmp)]
    else:
        # No admin endpoint: several Caddy processes (tests, benchmarks) must not share :2019.
        (tmp / "Caddyfile").write_text("{\n\tadmin off\n}\n" + config_text)
        argv = [exe, "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"]
    env = {**os.environ, "HOME": str(tmp), "XDG_DATA_HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    return proc, log


@contextlib.asynccontextmanager
async def front_proxy(
    server: str, *, qlik_url: str, app_url: str, cache_seconds: float = 0, **qlik: str
) -> AsyncIterator[str]:
    """`server` ("nginx" or "caddy") in front of the app at `app_url`; yields its base URL."""
    binary(server)
    with tempfile.TemporaryDirectory(prefix=f"qlik-sso-{server}-") as name:
        tmp = Path(name)
        os.chmod(tmp, 0o755)
        port = free_port()
        path = write_config(
            tmp,
            qlik_url=qlik_url,
            app_url=app_url,
            listen=port,
            cache_seconds=cache_seconds,
            **qlik,
        )
        text = render(plan_from_config(load_config(path, env={})), server)
        proc, log = start_server(server, tmp, text)
        try:
            await _wait_for_port(port, proc, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(proc)
