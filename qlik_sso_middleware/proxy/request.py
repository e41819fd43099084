"""`ProxiedRequest`: the per-request view of an ASGI scope that both proxy paths need."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

from starlette.types import Scope

from ..errors import RequestRefused
from .xrfkey import XRFKEY_HEADER, owned_xrfkey

__all__ = ["ProxiedRequest", "strip_query_params"]

# Never from a browser: a ticket in the query would let Qlik log the request in as the ticket's
# owner, and so would a Qlik Cloud `accessToken` (the tenant prefers it to the session cookie on a
# socket); a CSRF token is added by us for the session we hold. On the socket an xrfkey is inert
# (no header can vouch for it; `@qlik/api` sends one anyway): the browser's key never reaches Qlik.
_HTTP_STRIPPED_QUERY = frozenset({b"qlikticket", b"accesstoken"})
_WS_STRIPPED_QUERY = frozenset({b"qlikticket", b"accesstoken", b"qlik-csrf-token", b"xrfkey"})
# host [":" port]: a name, IPv4 or bracketed IPv6 address. The Host is put in front of the path to
# build the upstream WebSocket URL, so `me/sso/qrs/about?`, `x@y` or `x#` would rewrite that URL
# past every path check; and Qlik builds its own URLs from it.
_HOST = re.compile(rb"(?:[A-Za-z0-9\-._~]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def strip_query_params(query: bytes, names: frozenset[bytes]) -> bytes:
    """Drop query parameters whose (decoded, lower-cased) name is in `names`; keep the rest as-is."""
    if not query:
        return query
    if b"%" not in query:
        # Without escapes a name can only match as written, so no match anywhere means no change.
        folded = query.lower()
        if not any(name in folded for name in names):
            return query
    kept = []
    for part in query.split(b"&"):
        name = part.split(b"=", 1)[0]
        if unquote_to_bytes(name.replace(b"+", b" ")).lower() in names:
            continue
        kept.append(part)
    return b"&".join(kept)


class ProxiedRequest:
    """Everything about one browser request that the proxy paths read, parsed once."""

    __slots__ = (
        "headers",
        "host",
        "method",
        "query",
        "raw_path",
        "scheme",
        "scope",
        "sub_path",
        "xrfkey",
    )

    def __init__(self, scope: Scope, sub_path: str) -> None:
        self.scope = scope
        self.sub_path = sub_path
        self.headers: list[tuple[bytes, bytes]] = scope["headers"]
        self.method: str = scope.get("method", "GET")
        self.query: bytes = scope.get("query_string", b"")
        self.scheme: str = scope.get("scheme", "http")
        if b"#" in self.query or "#" in sub_path:
            # Browsers never send a fragment; the WebSocket server passes one on, and in the
            # upstream URL it would swallow the CSRF token we append (or make the URL invalid).
            raise RequestRefused("Request target contains a fragment ('#')")
        hosts = [v for k, v in self.headers if k == b"host"]
        if len(hosts) > 1:
            raise RequestRefused("More than one Host header")
        if hosts:
            if not _HOST.fullmatch(hosts[0]):
                raise RequestRefused("Invalid Host header")
            self.host = hosts[0].decode("latin-1")
        else:
            server = scope.get("server") or ("localhost", None)
            self.host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
        #: Our own xrfkey for Qlik, replacing the browser's on API paths (see `xrfkey.py`).
        self.xrfkey: bytes | None = None
        if scope["type"] == "http":
            self.query, self.xrfkey = owned_xrfkey(sub_path, self.query, self.headers)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def upstream_extra_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers the middleware itself vouches for on this request (Qlik's xrfkey pair)."""
        return [(XRFKEY_HEADER, self.xrfkey)] if self.xrfkey is not None else []

    def upstream_host(self, fixed: str | None) -> bytes:
        """The `Host` Qlik sees: a fixed one when configured, else the browser's (Qlik's advice)."""
        return (fixed or self.host).encode("latin-1")

    def upstream_query(self, *, websocket: bool = False) -> bytes:
        stripped = _WS_STRIPPED_QUERY if websocket else _HTTP_STRIPPED_QUERY
        query = strip_query_params(self.query, stripped)
        return b"?" + query if query else b""

    def forwarded_for(
        self, trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
    ) -> bytes:
        client = self.scope.get("client")
        peer = client[0] if client else "unknown"
        if trusted_proxies and _in_networks(peer, trusted_proxies):
            previous = [v for k, v in self.headers if k == b"x-forwarded-for"]
            if previous:
                return b", ".join([*previous, peer.encode("latin-1")])
        return str(peer).encode("latin-1")


def _in_networks(
    address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)
