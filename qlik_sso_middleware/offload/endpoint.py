"""The two requests offload mode adds to the app: the auth sub-request and the redirect round trip.

`answer_auth`: the front proxy asks whether a request under a Qlik mount path may pass. The answer
comes from `QlikSSO.admit` and the user's `UserSession`, exactly as for an in-process request:

- 200 with `X-Qlik-SSO-Cookie` (the `Cookie` header to send to Qlik: the allow-listed app cookies
  of `forward_cookies`, if any, and the user's Qlik session), `X-Qlik-SSO-URI` (the path
  and query to request from Qlik: the mount path mapped to Qlik's prefix, `qlikTicket` and, on the
  engine WebSocket, a browser's `qlik-csrf-token` removed, and the session's own CSRF token
  appended, and on Qlik's API paths the browser's checked `xrfkey` replaced by ours),
  `X-Qlik-SSO-Decoded-URI` (the same with the path percent-decoded, for Caddy),
  `X-Qlik-SSO-Host` (the `Host` Qlik must see) and `X-Qlik-SSO-Xrfkey` (the `X-Qlik-Xrfkey`
  header Qlik must see with that key, empty when the request names none).
- 401 (no logged-in user) or 403 (anything else refused) with the refusal's public message, and
  its real status in `X-Qlik-SSO-Status`. nginx's `auth_request` knows no other statuses; both
  front proxies then send the request through the app's in-process path, which answers it
  exactly (redirect to the login page, 503 with Retry-After, the WebSocket close code).

No identity header is among the values, on purpose: Qlik answers a forgotten cookie plus the
identity header by creating a new session and setting its cookie, and a front proxy cannot adopt
that cookie (it drops Qlik's `Set-Cookie`) so every request would cost one of the user's five
session slots. Without the header, a forgotten session is a redirect to Qlik's login, which the
front proxy routes through the app (`answer_redirect`).

On the engine WebSocket the CSRF token is asked of Qlik on every handshake, not taken from the
cache: the probe is also the check that Qlik still knows the session (a restart forgets them all),
and the front proxy, unlike the in-process relay, cannot retry a refused handshake.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from urllib.parse import unquote

from starlette.types import Scope, Send

from ..auth.answers import is_login_location
from ..cloud.upstream import CloudUpstream
from ..core import Admission, QlikSSO
from ..errors import NotAuthenticated, QlikSSOError, RequestRefused
from ..responses import error_body, respond
from .front import FrontProxy
from .subrequest import original_scope

__all__ = [
    "LOCATION_HEADER",
    "REDIRECTED_HEADER",
    "Redirect",
    "answer_auth",
    "answer_redirect",
    "redirect_of",
]

logger = logging.getLogger("qlik_sso_middleware.offload")

#: Set by the front proxy (with the secret) when it sends a request through the app because Qlik
#: answered it with a redirect: the `Cookie` the front proxy had sent to Qlik, and Qlik's Location.
REDIRECTED_HEADER = b"x-qlik-sso-redirected"
LOCATION_HEADER = b"x-qlik-sso-location"
#: The browser's method, when the front proxy cannot send the request itself again (Caddy has
#: sent its body to Qlik already) and sends a GET in its place.
METHOD_HEADER = b"x-qlik-sso-method"
# Requests that may be sent to Qlik again after a renewal (no body, no effect).
_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS"})


async def answer_auth(sso: QlikSSO, front: FrontProxy, scope: Scope, send: Send) -> None:
    """Answer one auth sub-request (see the module docstring)."""
    if not front.sent(scope["headers"]):
        # Never a session for a caller that is not the front proxy; nothing about why, either.
        logger.warning("auth sub-request without the front proxy's secret refused")
        await _refuse(send, RequestRefused("Not a sub-request of the front proxy", status_code=403))
        return
    try:
        original = original_scope(scope)
        upstream = sso.upstream_for_path(original["path"])
        if upstream is None:
            raise RequestRefused("Not under a Qlik mount path", status_code=404)
        if isinstance(upstream, CloudUpstream):
            # A Qlik Cloud mount needs headers per request (CSRF token, web integration) and
            # answers tokens itself: the front proxy sends it through the app's in-process path.
            raise RequestRefused("Qlik Cloud is served in-process", status_code=403)
        admitted = await sso.admit(original, upstream)
        session = admitted.session
        await session.open()
        websocket = original["type"] == "websocket"
        query = admitted.request.upstream_query(websocket=websocket)
        if websocket:
            token = await session.websocket_token(fresh=True)
            if token is not None:
                query += (b"&" if query else b"?") + b"qlik-csrf-token=" + token.encode("ascii")
    except QlikSSOError as exc:
        level = logging.WARNING if exc.status_code >= 500 else logging.DEBUG
        logger.log(level, "auth sub-request refused: %s", exc.message)
        await _refuse(send, exc)
        return
    route = upstream.route
    request = admitted.request
    path = route.base_path + request.sub_path
    # `forward_cookies`: the app cookies Qlik may see, exactly as the in-process path passes them.
    forwarded = route.header_policy.forwarded_cookies(request.headers)
    # Braces would be placeholders to Caddy's rewrite (`{env.…}`); Qlik decodes them the same.
    query = query.replace(b"{", b"%7B").replace(b"}", b"%7D")
    await respond(
        send,
        200,
        b"",
        "text/plain",
        [
            (b"x-qlik-sso-cookie", b"; ".join([*forwarded, session.cookie_header()])),
            (b"x-qlik-sso-uri", path.encode("ascii") + query),
            (b"x-qlik-sso-decoded-uri", _decoded(path) + query),
            (b"x-qlik-sso-host", request.upstream_host(route.host_header)),
            # Qlik's API paths: the pair's header, our key as in the URI (`proxy/xrfkey.py`);
            # empty elsewhere, and the front proxies then send no such header.
            (b"x-qlik-sso-xrfkey", request.xrfkey or b""),
        ],
    )


def _decoded(path: str) -> bytes:
    """`path` percent-decoded, for a front proxy that takes a decoded path and encodes it itself
    (Caddy's `rewrite`). A decoded `?` would start a query there, so it stays encoded; `%2F`, `%25`
    and the other separators never got this far (`PathPolicy`)."""
    return unquote(path, errors="replace").replace("?", "%3F").encode("utf-8")


async def _refuse(send: Send, exc: QlikSSOError) -> None:
    status = 401 if isinstance(exc, NotAuthenticated) else 403
    body, content_type = error_body(exc.status_code, exc.public_message, html=False)
    await respond(
        send, status, body, content_type, [(b"x-qlik-sso-status", str(exc.status_code).encode())]
    )


@dataclass(frozen=True, slots=True)
class Redirect:
    """What the front proxy says when it sends a request through the app because Qlik answered
    it with a redirect: the Qlik `Cookie` it had sent, Qlik's `Location`, and the browser's
    method when the round trip is a GET standing in for it."""

    cookie: bytes
    location: bytes
    method: str | None = None


def redirect_of(front: FrontProxy, scope: Scope) -> Redirect | None:
    """The `Redirect` the front proxy reports on this request (its secret, one
    `X-Qlik-SSO-Redirected` and at most one `X-Qlik-SSO-Location`); None on any other request."""
    headers = scope["headers"]
    cookies = [v for k, v in headers if k == REDIRECTED_HEADER]
    if not cookies or not front.sent(headers):
        return None
    locations = [v for k, v in headers if k == LOCATION_HEADER]
    methods = [v for k, v in headers if k == METHOD_HEADER]
    if len(cookies) != 1 or len(locations) > 1 or len(methods) > 1:
        raise RequestRefused("The front proxy's redirect report is malformed")
    method = methods[0].decode("latin-1").upper() if methods else None
    return Redirect(cookies[0], locations[0] if locations else b"", method)


async def answer_redirect(admitted: Admission, redirect: Redirect, send: Send) -> bool:
    """Handle a request Qlik answered the front proxy with a redirect; False: the in-process path
    is to forward it (see below), True: answered here.

    - A redirect that is not Qlik's login (a page that moved) is relayed to the browser, its
      `Location` pointed back at the app as the in-process path does; Qlik is not asked again.
    - Qlik's login: the session the front proxy used is gone. A repeatable request goes on through
      the in-process path, which renews the session (or adopts the one Qlik reissues on a header
      virtual proxy) and sends the request once more. Anything else is never sent twice: the
      session is renewed, if nobody has already, and the browser is asked to retry (503), as the
      in-process path answers it.
    """
    route = admitted.upstream.route
    request = admitted.request
    if not is_login_location(redirect.location):
        location = redirect.location
        if route.rewrites_locations:
            location = route.rewrite_location(location, request.host, request.scheme)
        await respond(send, 302, b"", "text/plain", [(b"location", location)])
        return True
    method = redirect.method or request.method
    if method in _REPEATABLE and redirect.method is None:
        return False
    session = admitted.session
    await session.open()
    if hmac.compare_digest(session.cookie_header(), redirect.cookie):
        await session.renew()
    raise RequestRefused(
        "The Qlik session had expired and was renewed; please retry", status_code=503
    )
