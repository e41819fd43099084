"""Qlik's xrfkey rule (anti-CSRF) on the proxy port: the `xrfkey` query value and the
`X-Qlik-Xrfkey` header must be the same 16 characters `[0-9a-zA-Z]`.

Where QPS applies it (evidence in docs/qlik-clients.md):
- QRS through the proxy (`qrs/...`): always; no key is a refusal too (Qlik's documentation).
- The other API paths (`qps/...`, `api/...`): a request *without* a key is served (Qlik's own
  enigma.js example and gopherciser call `qps/csrftoken` and `qps/user` without one); one that names
  a key must carry the matching header -- Qlik documents the pair for "calls to the QPS API" and
  its own clients (`@qlik/api`, gopherciser since November 2024) always send both. Whether QPS
  refuses a lone query value on `qps/...` is not established; the simulator does, unless
  `QlikSimulator(proxy_xrfkey_check=False)`.
- The engine WebSocket: never (a browser cannot set the header; `@qlik/api` puts `xrfkey` on the
  socket URL anyway).
"""

from __future__ import annotations

from collections.abc import Callable

from ._asgi import query_get

__all__ = ["XRF_FAILED", "valid_xrfkey", "xrfkey_pair_refused"]

XRF_FAILED = "XSRF prevention check failed. Possible XSRF discovered."
_API_PATHS = ("qps/", "qrs/", "api/")


def valid_xrfkey(key: str) -> bool:
    return len(key) == 16 and key.isascii() and key.isalnum()


def xrfkey_pair_refused(
    rest: str, query: str, header_values: Callable[[str], list[str]], *, required: bool = False
) -> bool:
    """Whether QPS refuses this request of path `rest` (after the prefix) for its xrfkey pair."""
    if not rest.lower().startswith(_API_PATHS):
        return False
    key = query_get(query, "xrfkey")
    if key is None:
        return required
    return not valid_xrfkey(key) or header_values("X-Qlik-Xrfkey")[:1] != [key]
