"""`Route`: where and how the forwarders send one mount path's requests, fixed at start-up.

Everything here is configuration the per-request path only reads: the engine and TLS context for
the Qlik proxy, the paths on both sides, the `Host` Qlik must see, the header policy and the peers
whose `X-Forwarded-For` is kept.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .engine import ProxyEngine
from .headers import RequestHeaderPolicy

__all__ = ["Network", "Route"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Route:
    """One Qlik virtual proxy as the forwarders see it.

    - `origin`: the Qlik proxy's `scheme://host[:port]`; `host`/`port` where to connect;
    - `base_path`: Qlik's prefix path (`/sso/`); `mount_path`: where the app serves it;
    - `host_header`: the `Host` Qlik must see, or None for the browser's (Qlik builds URLs from it);
    - `ssl_context`: for `wss://` (None on plain http); `engine`: the HTTP engine;
    - `header_policy`, `trusted_proxies`: what browsers may send on, whose `X-Forwarded-For` counts.
    """

    origin: str
    host: str
    port: int
    base_path: str
    mount_path: str
    host_header: str | None
    ssl_context: ssl.SSLContext | None
    engine: ProxyEngine
    header_policy: RequestHeaderPolicy
    trusted_proxies: Sequence[Network] = ()
    websocket_open_timeout: float = 10.0
    #: Location needs rewriting only when Qlik sees another host or prefix than the browser.
    rewrites_locations: bool = field(init=False)

    def __post_init__(self) -> None:
        rewrites = self.host_header is not None or self.mount_path != self.base_path
        object.__setattr__(self, "rewrites_locations", rewrites)

    @property
    def is_https(self) -> bool:
        return self.origin.startswith("https://")

    def rewrite_location(self, location: bytes, browser_host: str, browser_scheme: str) -> bytes:
        """Point a Qlik redirect back at the app: Qlik's own host names become the browser's host,
        and its prefix becomes the mount path (when they differ)."""
        text = location.decode("latin-1")
        parts = urlsplit(text)
        internal = {h.lower() for h in (self.host_header, urlsplit(self.origin).netloc) if h}
        if parts.netloc and parts.netloc.lower() in internal:
            text = (
                f"{browser_scheme}://{browser_host}"
                + text[len(f"{parts.scheme}://{parts.netloc}") :]
            )
            parts = urlsplit(text)
        base, mount = self.base_path, self.mount_path
        if base != mount and parts.path.startswith(base):
            prefix_end = text.find(parts.path) if parts.netloc else 0
            text = text[:prefix_end] + mount + text[prefix_end + len(base) :]
        return text.encode("latin-1")
