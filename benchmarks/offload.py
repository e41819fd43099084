"""Offload mode in the benchmark: nginx configured by `qlik-sso front-config`'s own code in front of
the upstream, asking an app process (`benchmarks.proxied:create_offload_app`) on every request, or
reusing its answers (auth cache). Each is one column; its CPU and RSS are nginx's and the app's
together, since both work for every request.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from qlik_sso_middleware.config import load_config
from qlik_sso_middleware.offload.front_config import plan_from_config, render

from . import procs

#: Shared by the app process and nginx (benchmark only).
SECRET = "benchmark-offload-secret-0123456789abcdef"
#: Seconds nginx reuses an auth answer in the cached column.
CACHE_SECONDS = 5


class Together:
    """Two processes measured as one target: a front proxy and the app it asks."""

    def __init__(self, name: str, front: procs.Server, app: procs.Server) -> None:
        self.name = name
        self.front = front
        self.app = app
        self.port = front.port
        self.url = front.url

    def cpu_seconds(self) -> float:
        return self.front.cpu_seconds() + self.app.cpu_seconds()

    def rss(self) -> int:
        return self.front.rss() + self.app.rss()

    def stop(self) -> None:
        self.front.stop()


def _config(tmp: Path, upstream_url: str, app_url: str, port: int, cache: float) -> str:
    path = tmp / "qlik-sso.toml"
    path.write_text(
        "\n".join(
            [
                "[qlik]",
                f'url = "{upstream_url}"',
                'prefix = "sso"',
                "[offload]",
                f'secret = "{SECRET}"',
                f'app_url = "{app_url}"',
                f'listen = "127.0.0.1:{port}"',
                f"auth_cache_seconds = {cache}",
                f'auth_cache_dir = "{tmp}/auth-cache"',
                "",
            ]
        )
    )
    return render(plan_from_config(load_config(path, env={})), "nginx")


@contextlib.contextmanager
def offload_nginx(
    name: str, upstream: procs.Server, app: procs.Server, *, cache: float = 0
) -> Iterator[Together | None]:
    """nginx in offload mode in front of `upstream`, asking `app`; None without nginx."""
    binary = procs.nginx_binary()
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="qlik-bench-offload-") as name_dir:
        tmp = Path(name_dir)
        port = procs.free_port()
        conf = procs.write_nginx_conf(tmp, _config(tmp, upstream.url, app.url, port, cache))
        front = procs.start(name, [binary, "-c", str(conf), "-p", str(tmp)], port)
        try:
            yield Together(name, front, app)
        finally:
            front.stop()
