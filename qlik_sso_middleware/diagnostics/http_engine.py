"""The `proxy.http_engine` step: can the HTTP engine the configuration picks verify Qlik's certificate?

Qlik's self-generated certificates name the host only in the subject CN; the reqwest engine
(rustls) cannot verify them, aiohttp can (`proxy/engine_choice.py`). This step tells which engine
the middleware will use for this Qlik, and fails where `http_engine = "reqwest"` was asked for
and the middleware would refuse to start. A separate module so `runner.py` only calls it (`engine.py` is the engine WebSocket step).
"""

from __future__ import annotations

from ..errors import ConfigurationError
from ..upstream import Upstream
from .report import Report

__all__ = ["http_engine_step"]

_TITLE = "Qlik proxy: HTTP engine"


async def http_engine_step(report: Report, upstream: Upstream) -> None:
    """Add `proxy.http_engine` (run after the proxy's TLS step passed)."""
    try:
        name = await upstream.choose_engine()
    except ConfigurationError as exc:
        cause, _, fix = str(exc).partition(" Fix: ")
        report.failed("proxy.http_engine", _TITLE, cause, fix or str(exc))
        return
    asked = upstream.target.http_engine
    if name is None:
        report.skipped("proxy.http_engine", _TITLE, "Qlik's certificate could not be fetched")
    elif asked == "auto" and name == "aiohttp" and upstream.target.resolved_http_engine != name:
        report.passed(
            "proxy.http_engine",
            _TITLE,
            "aiohttp, not reqwest: Qlik's certificate names its host only in the subject CN (no "
            "subjectAltName), which the reqwest engine cannot verify; a certificate with a "
            "subjectAltName on the Qlik proxy would allow the [fast] engine",
        )
    else:
        report.passed("proxy.http_engine", _TITLE, name)
