"""Running `qlik-sso serve`: load the configuration, listen, serve `ServeApp` under uvicorn."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator

import uvicorn

from ..config import load_config
from .app import PREFIX, build_serve_app

__all__ = ["run_serve_command"]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's handlers stop gracefully but re-raise the signal afterwards, which would make
        # the exit status 130/143; a clean stop on SIGINT/SIGTERM is success here (exit 0).
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_serve_command(config_path: str | None, *, host: str | None, port: int | None) -> int:
    """Load, validate, listen; returns 0 after SIGINT/SIGTERM."""
    config = load_config(config_path)
    logging.getLogger("qlik_sso_middleware").setLevel(config.logging.level)
    app = build_serve_app(config)
    host = host or config.serve.host
    port = config.serve.port if port is None else port
    try:
        sock = socket.create_server((host, port))
    except OSError as exc:
        print(f"qlik-sso serve: cannot listen on {host}:{port} ({exc.strerror})", file=sys.stderr)
        return 1
    bound = sock.getsockname()[1]
    server = _Server(
        uvicorn.Config(
            app,
            lifespan="on",
            ws="websockets-sansio",
            ws_max_size=512 * 1024 * 1024,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
        )
    )
    served = ", ".join(f"Qlik {u.route.origin} at {u.target.mount_path}" for u in app.sso.upstreams)
    print(
        f"qlik-sso serve: listening on http://{host}:{bound} — {served}, everything else to "
        f"{config.serve.upstream}; health at {PREFIX}health",
        flush=True,
    )
    server.run(sockets=[sock])
    return 0
