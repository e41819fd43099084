"""The proxy's HTTP engine: what the hot path needs from the library that talks to Qlik.

Two engines implement it, chosen per target (`QlikTarget.http_engine`, measured in `benchmarks/`):
`ReqwestEngine` (pyreqwest: Rust's hyper under asyncio, the default, about half the CPU per request)
and `AiohttpEngine` (aiohttp: the fallback, and the only one that takes an `ssl.SSLContext`).
The httpx client (logins, `qps/csrftoken`, logout) always runs on aiohttp: it is off the hot path.

Errors are translated once, here at the engine boundary, into the project's own: `QlikTimeout` when
Qlik is too slow, `QlikUnavailable` when it cannot be reached or breaks off a connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx2 as httpx

from ..errors import QlikError, QlikTimeout, QlikUnavailable

__all__ = [
    "HeaderLookup",
    "ProxyEngine",
    "Timeouts",
    "UpstreamResponse",
    "str_headers",
    "upstream_failure",
]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Upstream timeouts in seconds. `read` is long because Qlik exports take minutes."""

    connect: float = 5.0
    read: float = 300.0
    write: float = 60.0
    pool: float = 10.0
    websocket_open: float = 10.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


class UpstreamResponse(Protocol):
    """Qlik's answer: status, raw headers, body read on demand.

    Header names are ASCII bytes in any case (compare them lower-cased), values the bytes Qlik
    sent. Errors while reading the body are `QlikTimeout` / `QlikUnavailable`.
    """

    status_code: int
    raw_headers: tuple[tuple[bytes, bytes], ...]

    def header(self, name: bytes) -> bytes | None:
        """The first value of header `name` (lower-case), or None."""
        ...

    def header_values(self, name: bytes) -> list[bytes]:
        """Every value of header `name` (lower-case), in order."""
        ...

    @property
    def body(self) -> bytes | None:
        """The whole body once `read()` has run, else None."""
        ...

    async def read(self) -> bytes:
        """The whole body, in one await."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as the socket delivered it; each chunk is yielded once."""
        ...

    async def aclose(self) -> None:
        """Release the connection: back to the pool if the body was read, else closed."""
        ...


class ProxyEngine(Protocol):
    """Pooled HTTP/1.1 to one Qlik proxy; built with the target's `Timeouts`."""

    async def stream(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
    ) -> UpstreamResponse:
        """Send one proxied request; `url` is already percent-encoded and checked, and is sent
        byte for byte with exactly `headers` (no cookie jar, no decompression, no redirects).

        Raises `QlikTimeout` / `QlikUnavailable` (the engine's own error as `__cause__`); an
        exception raised by `body` propagates unchanged.
        """
        ...

    async def aclose(self) -> None: ...


class HeaderLookup:
    """What both engines' responses share: header lookups over `raw_headers`, the read body."""

    __slots__ = ("_body", "raw_headers")

    def __init__(self, raw_headers: tuple[tuple[bytes, bytes], ...]) -> None:
        self.raw_headers = raw_headers
        self._body: bytes | None = None

    def header(self, name: bytes) -> bytes | None:
        """The first value of header `name` (lower-case), or None."""
        for key, value in self.raw_headers:
            if key.lower() == name:
                return value
        return None

    def header_values(self, name: bytes) -> list[bytes]:
        """Every value of header `name` (lower-case), in order."""
        return [v for k, v in self.raw_headers if k.lower() == name]

    @property
    def body(self) -> bytes | None:
        """The whole body once `read()` has run, else None."""
        return self._body


def str_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Headers for a client that takes `str` and writes UTF-8: values that are not UTF-8 are
    dropped, since they could not be sent unchanged."""
    pairs: list[tuple[str, str]] = []
    for name, value in headers:
        try:
            pairs.append((name.decode("ascii"), value.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return pairs


def upstream_failure(url: str, exc: BaseException, *, timed_out: bool) -> QlikError:
    """The project's error for an engine's failure on a request to `url`; raise it `from exc`.

    The message names the origin and the engine's error class only: the path, the query and the
    error's own text may carry what the browser sent.
    """
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    name = type(exc).__name__
    if timed_out:
        return QlikTimeout(f"Qlik at {origin} did not answer in time ({name})")
    return QlikUnavailable(f"Qlik at {origin} is unreachable or broke off the connection ({name})")
