"""A raw loopback HTTP/1.1 server that records the exact bytes it receives, for engine tests."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from pathlib import Path

from qlik_sso_middleware.testing import generate_certificates

Reply = Callable[[bytes], bytes]


class RawServer:
    """Answers each request with `reply(request_head)`; records heads, bodies and connections."""

    def __init__(self, reply: Reply, tls: ssl.SSLContext | None = None) -> None:
        self.reply = reply
        self.tls = tls
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for _ in range(100):  # bounded keep-alive loop
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                lower = head.lower()
                body = b""
                if b"transfer-encoding: chunked" in lower:
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        chunk = await reader.readexactly(size + 2)
                        if size == 0:
                            break
                        body += chunk[:-2]
                elif b"content-length:" in lower:
                    length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(length)
                self.bodies.append(body)
                writer.write(self.reply(head))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)


def ok(body: bytes = b"hello", extra: bytes = b"") -> Reply:
    def reply(head: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)

    return reply


def server_tls_files(directory: Path, *, other_root: bool = False) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with Qlik-style generated certificates, and the root that signed them
    (or, with `other_root`, a root of another site)."""
    files = generate_certificates(directory, server_signed_by_other_root=other_root)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.server, files.server_key)
    return context, files.root
