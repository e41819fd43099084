"""Reading Qlik's answers on the proxy port: the session cookie it set, and signs that the session
presented is gone.

Shared by the login strategies (`_proxy_login`) and the session handling (`sessions/`), which must
agree on what each answer means.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

__all__ = ["REDIRECTS", "is_login_location", "qps_user_inactive", "session_cookie_from"]

#: The statuses Qlik redirects with.
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def session_cookie_from(set_cookies: Iterable[str], name: str) -> str | None:
    """The value Qlik set for cookie `name` in these `Set-Cookie` header values, if any."""
    for header in set_cookies:
        first = header.split(";", 1)[0]
        cname, sep, value = first.partition("=")
        if sep and cname.strip() == name and value.strip():
            return value.strip()
    return None


def qps_user_inactive(content: bytes) -> bool:
    """Does this `qps/user` body say the presented session is not logged in?"""
    try:
        body = json.loads(content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("session") == "inactive"


def is_login_location(location: bytes | None) -> bool:
    """Does a redirect to `location` send to Qlik's authentication module (so the session
    presented is unknown)? That redirect always carries `targetId`; any other redirect (a page
    moving) is an answer to relay."""
    return b"targetid=" in (location or b"").lower()
