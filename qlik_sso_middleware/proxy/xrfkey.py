"""The xrfkey pair on Qlik's API paths: the middleware owns it, the browser only proves intent.

Qlik's anti-CSRF rule for its REST APIs (QRS, the QPS personal API, the hub's `api/`): the `xrfkey`
query value and the `X-Qlik-Xrfkey` header must be the same 16 characters `[0-9a-zA-Z]`, else 403
"XSRF prevention check failed". Clients that follow it (`@qlik/api`'s `windowscookie` auth sends
the pair on every call, `qps/csrftoken` included) would always be refused through us: no
`X-Qlik-*` header from a browser ever reaches Qlik (`headers.py`).

The browser's pair still proves what Qlik's check is for: only a script allowed to set custom
headers on this origin can send it (a form or an `<img>` cannot). So on Qlik's API paths
(`qps/`, `qrs/`, `api/`) a request whose query names `xrfkey` must carry the same value in
`X-Qlik-Xrfkey` (else `RequestRefused` 403, Qlik's own answer); Qlik then gets a fresh random key
of ours in the query and in the header. The browser's value never reaches Qlik. Other paths and
the engine WebSocket (a browser cannot set its headers; Qlik does not check the pair there) are
left as they are.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

from ..errors import RequestRefused
from .headers import normalise_header_name

__all__ = ["XRFKEY_HEADER", "new_xrfkey", "owned_xrfkey"]

XRFKEY_HEADER = b"x-qlik-xrfkey"
_API_PATHS = ("qps/", "qrs/", "api/")
_REFUSED = (
    "XSRF prevention check failed: the xrfkey query parameter needs the same 16 characters "
    "in the X-Qlik-Xrfkey header"
)


def new_xrfkey() -> str:
    """A fresh 16-character xrfkey from `secrets` (Qlik accepts `[0-9a-zA-Z]` only).

    `auth/_qps.py` has its own for the QPS API: the layers (docs/architecture.md) keep `auth` and
    `proxy` from importing each other, and two lines are cheaper than a new shared part.
    """
    # Hex is a subset of Qlik's alphabet with 64 random bits, and costs 0.5 µs where 16 calls
    # of `secrets.choice` cost 11 µs: this runs on every API request (benchmarks/micro.py).
    return secrets.token_hex(8)


def _valid(key: bytes) -> bool:
    return len(key) == 16 and key.isalnum()  # bytes.isalnum() is ASCII-only: [0-9a-zA-Z]


def owned_xrfkey(
    sub_path: str, query: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> tuple[bytes, bytes | None]:
    """`(query for Qlik, key for Qlik's X-Qlik-Xrfkey header or None)` for an HTTP request.

    Raises `RequestRefused` (403) when an API path's query names `xrfkey` without the matching
    header, with a malformed key, or more than once (Qlik would read only one of them).
    """
    if not query or not sub_path.lower().startswith(_API_PATHS):
        return query, None
    if b"xrfkey" not in query.lower() and b"%" not in query:
        return query, None
    parts = query.split(b"&")
    positions = [
        index
        for index, part in enumerate(parts)
        if unquote_to_bytes(part.split(b"=", 1)[0].replace(b"+", b" ")).lower() == b"xrfkey"
    ]
    if not positions:
        return query, None
    header_keys = [
        v
        for k, v in headers
        if len(k) == len(XRFKEY_HEADER) and normalise_header_name(k) == XRFKEY_HEADER
    ]
    if len(positions) > 1 or len(header_keys) != 1:
        raise RequestRefused(_REFUSED, status_code=403)
    _, _, raw = parts[positions[0]].partition(b"=")
    browser_key = unquote_to_bytes(raw.replace(b"+", b" "))
    if not _valid(browser_key) or header_keys[0].strip() != browser_key:
        raise RequestRefused(_REFUSED, status_code=403)
    key = new_xrfkey().encode("ascii")
    parts[positions[0]] = b"xrfkey=" + key
    return b"&".join(parts), key
