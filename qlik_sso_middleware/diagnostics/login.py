"""The login check, through the configured strategy's own `login()`.

`auth/_proxy_login.py` explains failures in Qlik terms (one copy of that knowledge); this module
adds what only a diagnostic can afford: when the identity header is ignored it tries the likely
causes (a static user directory, another common header name, a ticket virtual proxy) and names
the one that works. Sessions those attempts create are ended by `cleanup()`.
"""

from __future__ import annotations

import json

import httpx

from ..auth.header import HeaderAuth
from ..config import build_qps_settings
from ..errors import ConfigurationError, InvalidIdentity, QlikAccessDenied, QlikError
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from .context import REDIRECTS, ProbeContext, Seen

__all__ = ["COMMON_HEADERS", "LoginChecks"]

#: Header names people commonly give header virtual proxies, tried when the configured one is
#: ignored (the test identity is sent; sessions created are ended).
COMMON_HEADERS = ("hdr-usr", "X-Remote-User", "X-User", "userid", "user", "iv-user", "REMOTE_USER")


class LoginChecks(ProbeContext):
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
            fix = await self._login_fix(exc, identity, self.seen[before:], qps_ok=qps_ok)
            self.report.failed("login", title, exc.message, fix)
            return None
        if not isinstance(auth, HeaderAuth):
            self._qps_sessions.append((identity, session))
        detail = f"session cookie {session.cookie_name}"
        if self.ctx.is_plain_http:
            detail += " (Qlik adds -HTTP over plain http)"
        self.report.passed("login", title, detail)
        return session

    async def _login_fix(
        self, exc: Exception, identity: QlikIdentity, seen: list[Seen], *, qps_ok: bool
    ) -> str:
        auth = self.target.auth
        last = seen[-1] if seen else None
        if isinstance(exc, QlikAccessDenied):
            return (
                "give the test user an access pass (QMC > License management), or end its other "
                "sessions (Qlik allows 5 per user)"
            )
        if isinstance(exc, InvalidIdentity | ConfigurationError):
            return "choose a [check] test_user this strategy can carry (US-ASCII for headers)"
        if last is None:
            return "check qlik.url and the network path to the Qlik proxy"
        ignored = last.status in REDIRECTS or last.inactive
        if ignored and isinstance(auth, HeaderAuth):
            return await self._ignored_header(auth, identity, qps_ok=qps_ok)
        if ignored:
            return (
                "the virtual proxy redirected the ticket to its login page: is auth.strategy the "
                "right one and [qps] the QPS API of this virtual proxy's proxy service?"
            )
        if last.status == 400:
            return f"create the virtual proxy '{self.target.prefix}' or fix qlik.prefix"
        seen_names = [c.split("=", 1)[0].strip() for c in last.set_cookies if "=" in c]
        configured = self.target.cookie_name or ""
        if seen_names and seen_names[0] != self.ctx.effective_cookie_name:
            if configured.endswith("-HTTP"):
                return (
                    f"remove '-HTTP' from qlik.cookie_name ('{configured}'): Qlik adds the "
                    "suffix itself when the proxy is reached over plain http"
                )
            name = seen_names[0]
            if self.ctx.is_plain_http and name.endswith("-HTTP"):
                name = name[: -len("-HTTP")]
            return (
                f"set qlik.cookie_name = '{name}' (the virtual proxy's 'Session cookie header "
                "name'), or leave it unset for the default X-Qlik-Session-<prefix>"
            )
        if "instead of" in str(exc):
            return (
                "make auth.static_user_directory / auth.pattern match the virtual proxy's user "
                "directory settings (static directory, or dynamic pattern $ud\\\\$id)"
            )
        return "see the message above; run with --debug for Qlik's full answers"

    async def _try_header(self, name: str, value: str) -> tuple[str, str] | None:
        """Who Qlik logs in when `name: value` is sent (None: it ignored the header)."""
        try:
            response = await self._get("qps/user", {name: value})
            body = json.loads(response.content) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        if isinstance(body, dict) and isinstance(body.get("userId"), str):
            return str(body.get("userDirectory", "")), str(body["userId"])
        return None

    async def _ignored_header(
        self, auth: HeaderAuth, identity: QlikIdentity, *, qps_ok: bool
    ) -> str:
        name = auth.header_name
        if auth.static_user_directory is None:
            found = await self._try_header(name, identity.user_id)
            if found is not None:
                return (
                    f"the virtual proxy uses a static user directory ('{found[0]}'): set "
                    f"auth.static_user_directory = '{found[0]}', or switch the virtual proxy to "
                    "'Header authentication dynamic user directory' with pattern $ud\\\\$id"
                )
        else:
            found = await self._try_header(name, f"{identity.user_directory}\\{identity.user_id}")
            if found is not None:
                return (
                    "the virtual proxy uses a dynamic user directory: remove "
                    "auth.static_user_directory (the header then carries DIRECTORY\\\\user)"
                )
        value = identity.header_value(auth.pattern)
        for other in COMMON_HEADERS:
            if other.lower() != name.lower() and await self._try_header(other, value):
                return (
                    f"the virtual proxy reads the header '{other}', not '{name}': set "
                    f"auth.header_name = '{other}' (it must equal the QMC's 'Header "
                    "authentication header name')"
                )
        if qps_ok and await self._ticket_works(identity):
            return (
                f"Qlik accepts tickets on '{self.target.prefix}' but ignores the header "
                f"'{name}': this looks like a ticket virtual proxy. Set auth.strategy = "
                "'session_api' (or 'ticket') and keep [qps], or change the virtual proxy's "
                f"authentication method to header authentication with header name '{name}'"
            )
        return (
            f"Qlik ignored the header '{name}' (no session, or a redirect to its login page). In the QMC open "
            f"Virtual proxies > '{self.target.prefix}' > Authentication: the method must be "
            "'Header authentication dynamic user directory' (pattern $ud\\\\$id) or static "
            f"(then set auth.static_user_directory), and the header name exactly '{name}'. If it "
            "is a ticket virtual proxy, set auth.strategy = 'session_api' or 'ticket' with [qps]"
        )

    async def _ticket_works(self, identity: QlikIdentity) -> bool:
        from ..auth._qps import QPSClient

        try:
            async with QPSClient(build_qps_settings(self.config)) as client:
                ticket = await client.create_ticket(identity)
            response = await self.upstream.client.get(
                self.base + "qps/user",
                params={"qlikTicket": ticket.ticket},
                headers={"host": self.host},
            )
            body = json.loads(response.content) if response.status_code == 200 else None
        except (QlikError, ConfigurationError, httpx.HTTPError, ValueError):
            return False
        return isinstance(body, dict) and isinstance(body.get("userId"), str)
