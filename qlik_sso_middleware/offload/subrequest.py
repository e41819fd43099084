"""The front proxy's auth sub-request, read back into the request it stands for.

The sub-request carries the browser's headers as they reached the front proxy (cookies, `Host`,
`Origin`, `Sec-Fetch-Site`: what the checks read) plus what the front proxy says about the original
request: `X-Original-URI` (the request target exactly as the browser sent it, never normalised),
`X-Original-Method`, `X-Original-Upgrade`, `X-Original-Proto` and `X-Original-Host` (the browser's
`Host`, when the front proxy's own HTTP client would put another one on the sub-request). The front proxy sets these
itself, replacing anything a browser sent under those names, and the secret header proves it did
(`FrontProxy.sent`). What comes out is an ASGI scope of the original request, which then passes
the same `QlikSSO.admit` as an in-process one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

from starlette.types import Scope

from ..errors import RequestRefused
from .front import SECRET_HEADER

__all__ = ["ORIGINAL_HEADERS", "original_scope"]

ORIGINAL_URI = b"x-original-uri"
ORIGINAL_METHOD = b"x-original-method"
ORIGINAL_UPGRADE = b"x-original-upgrade"
ORIGINAL_PROTO = b"x-original-proto"
ORIGINAL_HOST = b"x-original-host"
ORIGINAL_HEADERS = (ORIGINAL_URI, ORIGINAL_METHOD, ORIGINAL_UPGRADE, ORIGINAL_PROTO, ORIGINAL_HOST)

# What the front proxy says about the sub-request itself, not about the browser's request.
_SUBREQUEST_ONLY = frozenset(
    {*ORIGINAL_HEADERS, SECRET_HEADER, b"connection", b"content-length", b"transfer-encoding"}
)
_METHOD = re.compile(rb"[A-Z]{1,16}")
# An origin-form request target: "/" then visible ASCII. The path checks look closer.
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_MAX_TARGET = 16 * 1024


def _one(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    values = [v for k, v in headers if k == name]
    if len(values) > 1:
        raise RequestRefused(f"The auth sub-request carries {name.decode()} more than once")
    return values[0] if values else None


def original_scope(sub: Scope) -> Scope:
    """The ASGI scope of the request the auth sub-request `sub` stands for.

    Raises `RequestRefused` (400) when the front proxy left out the original URI or method, or
    sent them malformed: a configuration error of the front proxy, never a request to guess at.
    """
    headers: list[tuple[bytes, bytes]] = sub["headers"]
    target = _one(headers, ORIGINAL_URI)
    method = _one(headers, ORIGINAL_METHOD)
    if target is None or method is None:
        raise RequestRefused(
            "The auth sub-request does not say which request it is for: the front proxy must "
            "set X-Original-URI and X-Original-Method (see `qlik-sso front-config`)"
        )
    if len(target) > _MAX_TARGET:
        raise RequestRefused("Request target too long", status_code=414)
    if not _TARGET.fullmatch(target) or not _METHOD.fullmatch(method):
        raise RequestRefused(
            "The auth sub-request's X-Original-URI or X-Original-Method is invalid"
        )
    upgrade = (_one(headers, ORIGINAL_UPGRADE) or b"").strip().lower()
    proto = (_one(headers, ORIGINAL_PROTO) or b"http").strip().lower()
    websocket = upgrade == b"websocket"
    raw_path, _, query = target.partition(b"?")
    secure = proto == b"https"
    kept = [(k, v) for k, v in headers if k not in _SUBREQUEST_ONLY]
    host = _one(headers, ORIGINAL_HOST)
    if host is not None:
        kept = [(b"host", host), *((k, v) for k, v in kept if k != b"host")]
    # What outer middleware put in the sub-request's scope (a session, an authenticated user) was
    # read from the same browser headers: the resolver may rely on it, as it does in-process.
    scope: Scope = {
        **sub,
        "type": "websocket" if websocket else "http",
        "method": method.decode("ascii"),
        "scheme": ("wss" if secure else "ws") if websocket else ("https" if secure else "http"),
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": kept,
    }
    return scope
