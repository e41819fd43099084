"""Logging in through the Qlik proxy port, and explaining in Qlik's terms why it did not work.

Shared by `HeaderAuth` (identity header) and `TicketAuth` (ticket redemption): both send one request
to `<prefix>/qps/user`, take the session cookie Qlik sets and check who Qlik says is logged in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import httpx2 as httpx

from ..errors import QlikAccessDenied, QlikRejected, QlikTimeout, QlikUnavailable
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from .answers import qps_user_inactive, session_cookie_from
from .base import LoginContext

__all__ = ["login_via_proxy"]

_TOO_MANY = "too many sessions active in parallel"
_NO_PASS = "no access pass"


def _qlik_cookie_names(set_cookies: Iterable[str]) -> list[str]:
    names = []
    for header in set_cookies:
        cname = header.split(";", 1)[0].partition("=")[0].strip()
        if cname.lower().startswith("x-qlik-session"):
            names.append(cname)
    return names


async def login_via_proxy(
    identity: QlikIdentity,
    ctx: LoginContext,
    *,
    headers: dict[str, str],
    query: dict[str, str] | None = None,
    how: str,
) -> QlikSession:
    """GET `<prefix>/qps/user` with `headers`/`query`, return the session Qlik created.

    `how` names the mechanism in error messages ("the header 'hdr-usr'", "the ticket").
    Raises `QlikRejected` (with the likely virtual proxy misconfiguration), `QlikAccessDenied`,
    `QlikUnavailable` or `QlikTimeout`.
    """
    url = ctx.proxy_url + ctx.base_path + "qps/user"
    try:
        response = await ctx.client.get(
            url, headers={"host": ctx.host, **headers}, params=query, follow_redirects=False
        )
    except httpx.TimeoutException as exc:
        raise QlikTimeout(
            f"Qlik proxy at {ctx.proxy_url} did not answer the login in time"
        ) from exc
    except httpx.TransportError as exc:
        raise QlikUnavailable(
            f"Qlik proxy unreachable at {ctx.proxy_url} ({type(exc).__name__})"
        ) from exc
    vp = f"'{ctx.prefix}'" if ctx.prefix else "(default, no prefix)"
    status = response.status_code
    not_accepted = (
        "check that its authentication method matches this strategy (header authentication "
        "with the right user directory mode, or ticket) and that the header name is exactly "
        "the one configured here."
    )
    if status in (301, 302, 303, 307, 308):
        raise QlikRejected(
            f"The virtual proxy {vp} redirected to its login page instead of accepting {how}: "
            + not_accepted
        )
    if status == 400:
        raise QlikRejected(
            f"Qlik answered 400 for the prefix {vp}: no virtual proxy with this prefix is linked to "
            "this proxy service (prefixes are lowercase)."
        )
    if status == 403:
        text = response.text.lower()
        if _TOO_MANY in text:
            raise QlikAccessDenied(
                f"Qlik refused {identity}: too many sessions active in parallel (limit 5 per user)"
            )
        if _NO_PASS in text:
            raise QlikAccessDenied(f"Qlik refused {identity}: the user has no access pass")
        raise QlikRejected(f"Qlik answered 403 to the login of {identity}")
    if status >= 400:
        raise QlikRejected(f"Qlik answered {status} to the login of {identity}")
    if qps_user_inactive(response.content):
        raise QlikRejected(
            f"The virtual proxy {vp} did not log the user in with {how} (qps/user says the "
            "session is inactive): " + not_accepted
        )
    set_cookies = response.headers.get_list("set-cookie")
    cookie_name = ctx.effective_cookie_name
    value = session_cookie_from(set_cookies, cookie_name)
    if value is None:
        seen = _qlik_cookie_names(set_cookies)
        if seen:
            raise QlikRejected(
                f"Qlik set the session cookie {seen[0]!r} but the configured cookie name is "
                f"{cookie_name!r}: set cookie_name to the virtual proxy's 'Session cookie header "
                "name' (Qlik adds '-HTTP' itself when the proxy is reached over plain http)."
            )
        raise QlikRejected(
            f"Qlik accepted the login request of {identity} but set no session cookie "
            f"{cookie_name!r}: is {how} configured on the virtual proxy {vp}?"
        )
    _check_logged_in_user(response, identity, vp)
    return QlikSession(cookie_name, value, identity.user_key(), time.time())


def _check_logged_in_user(response: httpx.Response, identity: QlikIdentity, vp: str) -> None:
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise QlikRejected(
            f"Qlik answered the login on {vp} with something that is not qps/user JSON"
        ) from exc
    if not isinstance(body, dict):
        raise QlikRejected(f"Qlik answered the login on {vp} with an unexpected JSON shape")
    if body.get("session") == "inactive":
        raise QlikRejected(f"Qlik did not log in {identity} on the virtual proxy {vp}")
    ud, uid = body.get("userDirectory"), body.get("userId")
    if not isinstance(ud, str) or not isinstance(uid, str):
        raise QlikRejected(f"Qlik's qps/user answer on {vp} names no user")
    if ud.lower() != identity.user_directory.lower() or uid.lower() != identity.user_id.lower():
        raise QlikRejected(
            f"Qlik logged in {ud}\\{uid} instead of {identity} on {vp}: check the virtual proxy's "
            "static user directory or dynamic user directory pattern ($ud\\\\$id)."
        )
