"""Cross-site checks shared by the HTTP and WebSocket paths, so the two cannot drift apart.

The WebSocket check runs before anything else (cross-site WebSocket hijacking, as in
jupyter-server-proxy CVE-2024-28179); unsafe HTTP methods get the same origin rule.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import RequestRefused
from .request import ProxiedRequest

__all__ = ["check_cross_site"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _origin_allowed(origin: str, req: ProxiedRequest, allowed: frozenset[str]) -> bool:
    folded = origin.strip().lower()
    if folded in allowed:
        return True
    parts = urlsplit(folded)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed or file pages) and anything malformed
    # Same host and port as the request: the app's own origin. The scheme is not compared because
    # TLS is often terminated in front of the app; a different scheme on the same host and port
    # is not something a third-party site can present.
    return bool(parts.netloc == req.host.lower())


def check_cross_site(
    req: ProxiedRequest,
    allowed_origins: frozenset[str],
    *,
    websocket: bool,
    allow_missing_origin: bool = False,
) -> None:
    """Raise `RequestRefused` (403) for a cross-site WebSocket or unsafe request."""
    origins = [v for k, v in req.headers if k == b"origin"]
    if len(origins) > 1:
        raise RequestRefused("More than one Origin header", status_code=403)
    origin = origins[0].decode("latin-1") if origins else None
    if websocket:
        if origin is None:
            if allow_missing_origin:
                return
            raise RequestRefused("WebSocket without Origin refused", status_code=403)
        if not _origin_allowed(origin, req, allowed_origins):
            raise RequestRefused("WebSocket from a foreign origin refused", status_code=403)
        return
    if req.method in _SAFE_METHODS:
        return
    site = req.header(b"sec-fetch-site")
    if origin is not None:
        if not _origin_allowed(origin, req, allowed_origins):
            raise RequestRefused("Cross-site request refused", status_code=403)
        return
    if site is not None and site.lower() not in (b"same-origin", b"none"):
        raise RequestRefused("Cross-site request refused", status_code=403)
