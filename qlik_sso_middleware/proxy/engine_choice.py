"""Pick the engine that can verify the certificate Qlik really presents.

Why: Qlik's repository service generates the proxy's (and port 4243's) server certificate with the
host name in the subject CN only, no subjectAltName (docs/certificates.md). The reqwest engine
verifies with rustls, which follows RFC 6125 and never reads the CN: it refuses such a certificate
("certificate is not valid for any names"). Python's `ssl` (OpenSSL) falls back to the CN when a
certificate has no DNS names, so the aiohttp engine, the login client and the WebSocket client
accept it.

`ChosenEngine` sits where the reqwest engine would: before its first request (or at start-up,
through `choose()`) it fetches Qlik's certificate once with Python's `ssl` and the target's own
verification settings. A certificate without subjectAltName sends every request to aiohttp (with
one warning) when the engine was `auto`, and raises `ConfigurationError` naming cause and fix when
`reqwest` was asked for explicitly. If Qlik cannot be reached, or Python's `ssl` itself refuses the
certificate, nothing is decided: that request goes to the preferred engine (which fails like any
request to an unreachable or untrusted Qlik would) and the next one probes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Iterable

from cryptography import x509

from ..errors import ConfigurationError
from .engine import ProxyEngine, UpstreamResponse

__all__ = ["ChosenEngine", "cn_only_fix", "names_only_in_cn", "peer_certificate"]

logger = logging.getLogger("qlik_sso_middleware.proxy")


def names_only_in_cn(cert: x509.Certificate) -> bool:
    """True when `cert` names its host(s) nowhere but the subject CN (no DNS or IP in a SAN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    return not (san.get_values_for_type(x509.DNSName) or san.get_values_for_type(x509.IPAddress))


def cn_only_fix(url: str) -> str:
    """The cause and the fix, in the words the start-up error and `qlik-sso check` both use."""
    return (
        f"Qlik's certificate at {url} names its host only in the subject CN (no subjectAltName), "
        "as Qlik's self-generated certificates do; the reqwest engine (rustls) cannot verify "
        "such a certificate. Fix: set http_engine='aiohttp' (or 'auto', which picks aiohttp for "
        "it), or install a certificate with a subjectAltName on the Qlik proxy"
    )


async def peer_certificate(
    host: str, port: int, context: ssl.SSLContext, limit: float
) -> x509.Certificate | None:
    """Qlik's certificate, fetched through `context` (so only one it verifies); None if the
    handshake fails for any reason."""
    try:
        async with asyncio.timeout(limit):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):  # the probe is done: a close error is moot
        await writer.wait_closed()
    return x509.load_der_x509_certificate(der) if der else None


class ChosenEngine:
    """The reqwest engine, unless Qlik's certificate needs aiohttp (see the module docstring)."""

    def __init__(
        self,
        *,
        preferred: ProxyEngine,
        fallback: ProxyEngine,
        url: str,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        explicit: bool,
        connect_timeout: float,
    ) -> None:
        self._preferred = preferred
        self._fallback = fallback
        self._url = url
        self._host = host
        self._port = port
        self._ssl_context = ssl_context
        self._explicit = explicit
        self._connect_timeout = connect_timeout
        self._chosen: ProxyEngine | None = None
        self._lock = asyncio.Lock()
        #: "reqwest" | "aiohttp" once decided, else None.
        self.name: str | None = None

    async def choose(self) -> str | None:
        """Probe Qlik once and decide; the engine's name, or None while Qlik is unreachable.

        Raises `ConfigurationError` when `reqwest` was asked for and cannot verify Qlik."""
        if self._chosen is not None:
            return self.name
        async with self._lock:
            if self._chosen is None:
                cert = await peer_certificate(
                    self._host, self._port, self._ssl_context, self._connect_timeout
                )
                if cert is None:
                    return None
                if not names_only_in_cn(cert):
                    self._chosen, self.name = self._preferred, "reqwest"
                elif self._explicit:
                    raise ConfigurationError(cn_only_fix(self._url), field="http_engine")
                else:
                    logger.warning("using the aiohttp engine: %s", cn_only_fix(self._url))
                    self._chosen, self.name = self._fallback, "aiohttp"
        return self.name

    async def stream(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
    ) -> UpstreamResponse:
        engine = self._chosen
        if engine is None:
            await self.choose()
            engine = self._chosen or self._preferred
        return await engine.stream(method, url, headers, body)

    async def aclose(self) -> None:
        await self._preferred.aclose()
        await self._fallback.aclose()
