"""The login check, through the configured strategy's own `login()`, and its diagnosis.

`auth/_proxy_login.py` explains failures in Qlik terms (one copy of that knowledge); this module
adds what only a diagnostic can afford: when the identity header is ignored it tries the likely
causes in order and names the one that works:

1. the configured header name's twins (`CMI-Header` for `CMI_Header`): a middleware strips every
   spelling of its header, but Qlik reads exactly one;
2. the other user directory mode (the id alone for a static VP, `DIR\\\\id` for a dynamic one);
3. header names people commonly give header VPs;
4. a ticket (the VP is a ticket VP).

Each attempt is one `qps/user` request; the sessions they create are ended by `cleanup()`.
"""

from __future__ import annotations

import re
from typing import Any

import httpx2 as httpx

from ..auth.header import HeaderAuth
from ..config import build_qps_settings
from ..errors import ConfigurationError, InvalidIdentity, QlikAccessDenied, QlikError
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from .context import REDIRECTS, Seen, json_body
from .report import Action
from .vp import VirtualProxyChecks

__all__ = ["COMMON_HEADERS", "LoginChecks", "header_twins"]

#: Header names people commonly give header virtual proxies, tried when the configured one and
#: its twins are ignored (the test identity is sent; sessions created are ended).
COMMON_HEADERS = ("hdr-usr", "X-Remote-User", "X-User", "userid", "user", "iv-user", "REMOTE_USER")
_LOGGED_IN = re.compile(r"logged in (?P<ud>[^\\\s]+)\\(?P<id>\S+) instead of")
_UNDERSCORE_NOTE = (
    "its name has '_': nginx drops such request headers by default (underscores_in_headers "
    "off), as can other servers between the middleware and Qlik"
)

Fix = tuple[str, Action | None]


def header_twins(name: str) -> list[str]:
    """Spellings of `name` a person may have meant: every `_` as `-`, every `-` as `_`."""
    twins = [name.replace("_", "-"), name.replace("-", "_")]
    return [t for t in dict.fromkeys(twins) if t.lower() != name.lower()]


class LoginChecks(VirtualProxyChecks):
    """`login` and its diagnosis."""

    async def _login(self, identity: QlikIdentity, *, qps_ok: bool) -> QlikSession | None:
        auth = self.target.auth
        strategy = self.config.auth.strategy
        title = f"login of {identity} ({strategy})"
        before = len(self.seen)
        try:
            auth.check_identity(identity)
            session = await auth.login(identity, self.ctx)
        except (QlikError, InvalidIdentity, ConfigurationError) as exc:
            fix, action = await self._login_fix(exc, identity, self.seen[before:], qps_ok=qps_ok)
            self.report.failed("login", title, exc.message, fix, action)
            return None
        if not isinstance(auth, HeaderAuth):
            self._qps_sessions.append((identity, session))
        detail = f"session cookie {session.cookie_name}"
        if self.ctx.is_plain_http:
            detail += " (Qlik adds -HTTP over plain http)"
        if isinstance(auth, HeaderAuth) and "_" in auth.header_name:
            detail += f"; header '{auth.header_name}': {_UNDERSCORE_NOTE}"
        self.report.passed("login", title, detail)
        return session

    async def _login_fix(
        self, exc: Exception, identity: QlikIdentity, seen: list[Seen], *, qps_ok: bool
    ) -> Fix:
        auth = self.target.auth
        last = seen[-1] if seen else None
        if isinstance(exc, QlikAccessDenied):
            return self._access_fix(exc.message, identity)
        if isinstance(exc, InvalidIdentity) and isinstance(auth, HeaderAuth):
            directory = auth.static_user_directory
            if directory and identity.user_directory.lower() != directory.lower():
                user = f"{directory}\\{identity.user_id}"
                return (
                    f"the test user must be of the static user directory '{directory}': set "
                    f"[check] test_user = '{user}'",
                    {"config": {"check.test_user": user}},
                )
        if isinstance(exc, InvalidIdentity | ConfigurationError):
            return (
                "choose a [check] test_user this strategy can carry (US-ASCII for headers)",
                {"config": {"check.test_user": "<DIRECTORY\\user>"}},
            )
        if last is None:
            return "check qlik.url and the network path to the Qlik proxy", None
        ignored = last.status in REDIRECTS or last.inactive
        if ignored and isinstance(auth, HeaderAuth):
            return await self._ignored_header(auth, identity, qps_ok=qps_ok)
        if ignored:
            return (
                "the virtual proxy redirected the ticket to its login page: is auth.strategy the "
                "right one and [qps] the QPS API of this virtual proxy's proxy service?",
                None,
            )
        if last.status == 400:
            return self._create_fix_text(), self._create_action()
        found = _LOGGED_IN.search(str(exc))
        if found:
            return self._other_user_fix(found["ud"], found["id"], identity)
        seen_names = [c.split("=", 1)[0].strip() for c in last.set_cookies if "=" in c]
        if last.status < 400 and seen_names and seen_names[0] != self.ctx.effective_cookie_name:
            fix = self._cookie_fix(seen_names[0])
            if fix is not None:
                return fix
        return (
            f"Qlik's answer was {last.shown}: check that qlik.url is the Qlik proxy and that "
            "nothing in front of it rewrites answers",
            None,
        )

    def _access_fix(self, message: str, identity: QlikIdentity) -> Fix:
        if "too many sessions" in message.lower():
            prefix = self.target.prefix
            where = f"/qps/{prefix}/" if prefix else "/qps/"
            return (
                f"Qlik allows 5 parallel sessions per user and virtual proxy, and keeps an ended "
                f"one's slot for 5 minutes: end {identity}'s sessions (QPS API DELETE "
                f"{where}user/{identity.user_directory}/{identity.user_id}, or let them time out) "
                "and wait out the cool-down, or check with another [check] test_user. Apps "
                "that log in per request or per page exhaust the limit this way",
                {"end_sessions": str(identity)},
            )
        return (
            f"{identity} has no access pass: in the QMC, License management, allocate "
            "professional or analyzer access to the user (or a login access rule that covers "
            "them); if access comes from a rule on a user directory group, synchronise that "
            "user directory (User directory connectors > Sync) so the rule can see the user",
            {"access_pass": str(identity)},
        )

    def _cookie_fix(self, seen_name: str) -> Fix | None:
        configured = self.config.qlik.cookie_name
        if configured is not None and configured.endswith("-HTTP"):
            name = configured[: -len("-HTTP")]
            return (
                f"set qlik.cookie_name = '{name}' (without '-HTTP'): Qlik adds the suffix itself "
                "when the proxy is reached over plain http",
                {"config": {"qlik.cookie_name": name}},
            )
        name = seen_name
        if self.ctx.is_plain_http and name.endswith("-HTTP"):
            name = name[: -len("-HTTP")]
        if name == self.target.cookie_name:
            return None  # the name is right; something else is wrong
        now = f"'{configured}'" if configured else f"unset, so '{self.target.cookie_name}'"
        return (
            f"set qlik.cookie_name = '{name}' (qlik.cookie_name is {now}; it must equal the "
            "virtual proxy's 'Session cookie header name')",
            {"config": {"qlik.cookie_name": name}},
        )

    def _other_user_fix(self, ud: str, uid: str, identity: QlikIdentity) -> Fix:
        prefix = self.target.prefix
        if ud.upper() == "NONE" and uid.lower().startswith("anonymous"):
            return (
                f"the virtual proxy logs everyone in as an anonymous user: in the QMC, Virtual "
                f"proxies > '{prefix}' > Authentication, set 'Anonymous access mode' to 'No "
                "anonymous user'",
                {"virtual_proxy": {"prefix": prefix, "set": {"anonymous": "none"}}},
            )
        if (ud.lower(), uid.lower()) == (identity.user_id.lower(), identity.user_directory.lower()):
            return (
                "the virtual proxy's dynamic user directory pattern takes the parts the other "
                "way round ($id\\\\$ud): set auth.pattern = '$id\\\\$ud', or make the QMC's "
                "pattern $ud\\\\$id",
                {"config": {"auth.pattern": "$id\\$ud"}},
            )
        if uid.lower() == identity.user_id.lower():
            return (
                f"the virtual proxy puts users in the static user directory '{ud}': set "
                f"auth.static_user_directory = '{ud}' and [check] test_user = '{ud}\\{uid}'",
                {
                    "config": {
                        "auth.static_user_directory": ud,
                        "check.test_user": f"{ud}\\{uid}",
                    }
                },
            )
        return (
            "match auth.static_user_directory / auth.pattern to the virtual proxy's user "
            "directory settings (static directory, or dynamic pattern $ud\\\\$id)",
            None,
        )

    async def _try_header(self, name: str, value: str) -> tuple[str, str] | None:
        """Who Qlik logs in when `name: value` is sent (None: it ignored the header)."""
        try:
            response = await self._get("qps/user", {name: value})
        except httpx.HTTPError:
            return None
        body = json_body(response) if response.status_code == 200 else None
        if isinstance(body, dict) and isinstance(body.get("userId"), str):
            return str(body.get("userDirectory", "")), str(body["userId"])
        return None

    async def _ignored_header(
        self, auth: HeaderAuth, identity: QlikIdentity, *, qps_ok: bool
    ) -> Fix:
        name = auth.header_name
        value = identity.header_value(auth.pattern)
        for twin in header_twins(name):
            if await self._try_header(twin, value):
                note = f" ({_UNDERSCORE_NOTE})" if "_" in twin else ""
                return (
                    f"the virtual proxy accepts the header '{twin}', not '{name}': set "
                    f"auth.header_name = '{twin}'{note}",
                    {"config": {"auth.header_name": twin}},
                )
        if auth.static_user_directory is None:
            found = await self._try_header(name, identity.user_id)
            if found is not None:
                user = f"{found[0]}\\{identity.user_id}"
                return (
                    f"the virtual proxy uses the static user directory '{found[0]}': set "
                    f"auth.static_user_directory = '{found[0]}' (and [check] test_user = "
                    f"'{found[0]}\\{identity.user_id}'), or switch the VP to 'Header "
                    "authentication dynamic user directory' with pattern $ud\\\\$id",
                    {
                        "config": {
                            "auth.static_user_directory": found[0],
                            "check.test_user": user,
                        }
                    },
                )
        else:
            found = await self._try_header(name, f"{identity.user_directory}\\{identity.user_id}")
            if found is not None:
                return (
                    "the virtual proxy uses a dynamic user directory: remove "
                    "auth.static_user_directory (the header then carries DIRECTORY\\\\user)",
                    {"config": {"auth.static_user_directory": None}},
                )
        for other in COMMON_HEADERS:
            if other.lower() != name.lower() and await self._try_header(other, value):
                return (
                    f"the virtual proxy reads the header '{other}', not '{name}': set "
                    f"auth.header_name = '{other}' (it must equal the QMC's 'Header "
                    "authentication header name')",
                    {"config": {"auth.header_name": other}},
                )
        if qps_ok and await self._ticket_works(identity):
            return (
                f"Qlik accepts tickets on '{self.target.prefix}' but ignores the header "
                f"'{name}': this is a ticket virtual proxy. Set auth.strategy = "
                "'session_api' (or 'ticket') and keep [qps], or change the virtual proxy's "
                f"authentication method to header authentication with header name '{name}'",
                {"config": {"auth.strategy": "session_api"}},
            )
        return self._qmc_header_fix(auth)

    def _qmc_header_fix(self, auth: HeaderAuth) -> Fix:
        prefix = self.target.prefix
        settings: dict[str, Any] = {"header_name": auth.header_name}
        if auth.static_user_directory is None:
            settings |= {"auth": "header_dynamic", "dynamic_pattern": self.config.auth.pattern}
            method = "'Header authentication dynamic user directory' (pattern $ud\\\\$id)"
        else:
            settings |= {
                "auth": "header_static",
                "static_user_directory": auth.static_user_directory,
            }
            method = (
                f"'Header authentication static user directory' ('{auth.static_user_directory}')"
            )
        return (
            f"Qlik ignored the header '{auth.header_name}' and no likely variant works. In the "
            f"QMC open Virtual proxies > '{prefix}' > Authentication: set the method to "
            f"{method} and 'Header authentication header name' to exactly "
            f"'{auth.header_name}'",
            {"virtual_proxy": {"prefix": prefix, "set": settings}},
        )

    async def _ticket_works(self, identity: QlikIdentity) -> bool:
        from ..auth._qps import QPSClient
        from ..auth.ticket import mask_tickets_in_httpx_logs

        mask_tickets_in_httpx_logs()  # the redemption URL carries the ticket
        try:
            async with QPSClient(build_qps_settings(self.config)) as client:
                ticket = await client.create_ticket(identity)
            response = await self.upstream.client.get(
                self.base + "qps/user",
                params={"qlikTicket": ticket.ticket},
                headers={"host": self.host},
            )
        except (QlikError, ConfigurationError, httpx.HTTPError):
            return False
        body = json_body(response) if response.status_code == 200 else None
        return isinstance(body, dict) and isinstance(body.get("userId"), str)
