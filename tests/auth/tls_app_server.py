"""A real mutual-TLS HTTP server on 127.0.0.1 for the QPS client tests (uvicorn, ephemeral port)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette

from qlik_sso_middleware.testing.certificates import CertificateFiles


@asynccontextmanager
async def serve_tls(
    app: Starlette, files: CertificateFiles, *, client_ca: CertificateFiles | None = None
) -> AsyncIterator[int]:
    """Serve `app` with `files`' server certificate, requiring a client certificate signed by
    `client_ca`'s root (default: `files.root`). Yields the port; stops the server on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        ssl_certfile=str(files.server),
        ssl_keyfile=str(files.server_key),
        ssl_ca_certs=str((client_ca or files).root),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        log_level="critical",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "test TLS server did not start"
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
