"""The simulated Qlik Sense Repository Service API (port 4242 in production), read-only and small.

QRS holds the site's settings; with the certificate exported from the QMC (mutual TLS, set up by
the server) and `X-Qlik-User: UserDirectory=INTERNAL; UserId=sa_repository` a caller has
administrator rights (help.qlik.com, QRS "Authenticating with the server certificate"). The
simulator answers the one call `qlik-sso check` makes there:

    GET /qrs/virtualproxyconfig/full[?filter=prefix eq 'sso']     the VPs, in QRS's field names

with the xrfkey rule of every Qlik API (403 "XSRF prevention check failed" otherwise), and 403
without an `X-Qlik-User` header.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from ._asgi import (
    Receive,
    Scope,
    Send,
    drain,
    header_pairs,
    http_only,
    query_get,
    send_body,
    send_json,
)
from .api_app import XRF_FAILED, xrfkey_ok
from .records import RecordedRequest
from .virtual_proxy import VirtualProxy

__all__ = ["QrsApp", "qrs_virtual_proxy"]

_AUTH_METHODS = {"ticket": 0, "header_static": 1, "header_dynamic": 2}
_ANONYMOUS = {"none": 0, "allow": 1, "always": 2}
_FILTER = re.compile(r"^\s*prefix\s+eq\s+'(?P<prefix>[^']*)'\s*$", re.IGNORECASE)


def qrs_virtual_proxy(vp: VirtualProxy) -> dict[str, Any]:
    """`vp` as QRS's `VirtualProxyConfig` JSON (help.qlik.com, QRS API: virtualproxyconfig)."""
    return {
        "prefix": vp.prefix,
        "sessionCookieHeaderName": vp.base_cookie_name,
        "sessionInactivityTimeout": int(vp.session_timeout // 60),
        "authenticationMethod": _AUTH_METHODS[vp.auth],
        "headerAuthenticationHeaderName": vp.header_name,
        "headerAuthenticationStaticUserDirectory": vp.static_user_directory or "",
        "headerAuthenticationDynamicUserDirectory": vp.dynamic_pattern,
        "anonymousAccessMode": _ANONYMOUS[vp.anonymous],
        "windowsAuthenticationEnabledDevicePattern": vp.windows_auth_pattern,
        "websocketCrossOriginWhiteList": list(vp.host_allow_list),
        "sessionCookieDomain": vp.cookie_domain or "",
        "loadBalancingServerNodes": [{"name": node} for node in vp.load_balancing_nodes],
    }


class QrsApp:
    """ASGI app of the QRS port: reads the simulator's virtual proxies as they are now."""

    def __init__(self, virtual_proxies: Callable[[], Iterable[VirtualProxy]]) -> None:
        self._virtual_proxies = virtual_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await http_only(scope, receive, send):
            return
        await drain(receive)
        headers = header_pairs(scope)
        query = scope.get("query_string", b"").decode("latin-1")
        record = RecordedRequest(
            port="api", method=scope["method"], path=scope["path"], query=query, headers=headers,
            cookies={}, time=0.0,
        )  # fmt: skip
        if not xrfkey_ok(record):
            await send_body(send, 403, XRF_FAILED, "text/plain; charset=utf-8")
            return
        if not record.header("X-Qlik-User"):
            await send_body(send, 403, "Forbidden", "text/plain; charset=utf-8")
            return
        if scope["method"] != "GET" or scope["path"].rstrip("/") not in (
            "/qrs/virtualproxyconfig",
            "/qrs/virtualproxyconfig/full",
        ):
            await send_body(send, 404, "Not found", "text/plain")
            return
        proxies = list(self._virtual_proxies())
        wanted = query_get(query, "filter")
        if wanted is not None:
            found = _FILTER.match(wanted)
            if found is None:
                await send_body(send, 400, "Unsupported filter", "text/plain")
                return
            proxies = [vp for vp in proxies if vp.prefix == found["prefix"].lower()]
        await send_json(send, 200, [qrs_virtual_proxy(vp) for vp in proxies])
