"""The Qlik-level checks: virtual proxy, login, `qps/user`, xrfkey, CSRF token, WebSocket, cookie.

The login goes through the configured strategy's own `login()` (so `auth/_proxy_login.py` explains
failures in Qlik terms, one copy of that knowledge); this module adds what only a diagnostic can
afford: when a header is ignored it tries the likely causes (static directory, another common
header name, a ticket virtual proxy) and names the one that works. Every response is recorded by
an httpx hook so any session cookie Qlik set is ended by `cleanup()`; values are never shown.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from ..auth.header import HeaderAuth
from ..config import QlikSSOConfig, build_qps_settings
from ..errors import ConfigurationError, InvalidIdentity, QlikAccessDenied, QlikError
from ..identity import QlikIdentity
from ..proxy.upstream import Upstream
from ..stores.base import QlikSession
from .report import Report

__all__ = ["QlikProbe"]

#: Header names people commonly give header virtual proxies, tried when the configured one is
#: ignored (the test identity is sent; sessions created are ended).
COMMON_HEADERS = ("hdr-usr", "X-Remote-User", "X-User", "userid", "user", "iv-user", "REMOTE_USER")
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class _Seen:
    method: str
    path: str
    status: int
    set_cookies: tuple[str, ...]
    content_type: str
    inactive: bool  # qps/user JSON {"session": "inactive"}: nothing logged the user in


class QlikProbe:
    """One run of the Qlik-level checks against `upstream` (the middleware's own client)."""

    def __init__(self, config: QlikSSOConfig, upstream: Upstream, report: Report) -> None:
        self.config = config
        self.upstream = upstream
        self.report = report
        self.target = upstream.target
        parts = urlsplit(config.app.origin or "")
        if config.qlik.host_header:
            self.host = config.qlik.host_header
        elif parts.netloc and config.app.embedding == "proxy":
            self.host = parts.netloc  # the middleware preserves the browser's Host
        else:
            self.host = urlsplit(self.target.url).netloc
        self.ctx = upstream.login_context(self.host)
        self.base = self.target.url + self.ctx.base_path
        self.seen: list[_Seen] = []
        self._qps_sessions: list[tuple[QlikIdentity, QlikSession]] = []
        upstream.client.event_hooks["response"].append(self._record)

    async def _record(self, response: httpx.Response) -> None:
        await response.aread()  # small answers only: qps/user, csrftoken, qrs/about
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        inactive = isinstance(body, dict) and body.get("session") == "inactive"
        self.seen.append(
            _Seen(
                response.request.method,
                response.request.url.path,
                response.status_code,
                tuple(response.headers.get_list("set-cookie")),
                response.headers.get("content-type", ""),
                inactive,
            )
        )

    async def _get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.upstream.client.get(
            self.base + path, headers={"host": self.host, **(headers or {})}
        )

    # -- the steps --------------------------------------------------------------------------

    async def run(self, *, qps_ok: bool, can_login: bool = True) -> None:
        if not await self._virtual_proxy():
            return
        if not can_login:
            self.report.skipped("login", "test login", "the QPS certificates cannot be used")
            return
        identity = self._identity()
        if identity is None:
            return
        session = await self._login(identity, qps_ok=qps_ok)
        if session is None:
            return
        headers = self._session_headers(identity, session)
        if not await self._whoami(identity, headers):
            return
        if not qps_ok:
            await self._xrfkey(headers)
        token = await self._csrf(headers)
        await self._websocket(headers, token)
        self._cookie_attributes()

    async def _virtual_proxy(self) -> bool:
        title = f"virtual proxy '{self.target.prefix}' exists"
        fix = (
            f"in the QMC, open Virtual proxies: the prefix must be exactly "
            f"'{self.target.prefix}' (prefixes are lowercase) and the virtual proxy must be "
            "linked to this proxy service (Associated items > Proxies)"
        )
        try:
            response = await self._get("qps/user")
        except httpx.HTTPError as exc:
            self.report.failed("vp.exists", title, f"no answer ({type(exc).__name__})", fix)
            return False
        if response.status_code == 400:
            self.report.failed(
                "vp.exists", title, "Qlik answered 400: no virtual proxy with this prefix", fix
            )
            return False
        if response.status_code in _REDIRECTS:
            self.report.passed("vp.exists", title, "answers (redirects anonymous users to login)")
            return True
        if response.status_code == 200 and "json" in response.headers.get("content-type", ""):
            self.report.passed("vp.exists", title, "answers qps/user")
            return True
        self.report.failed(
            "vp.exists",
            title,
            f"answered {response.status_code} {response.headers.get('content-type', '')} "
            "instead of Qlik's qps/user JSON",
            "qlik.url must be the Qlik proxy itself (not a load balancer, SSO portal or login "
            "page in front of it)",
        )
        return False

    def _identity(self) -> QlikIdentity | None:
        user = self.config.check.test_user
        if user is None:
            self.report.failed(
                "login",
                "test login",
                "no test identity",
                "set [check] test_user = 'DIRECTORY\\\\user' (QLIK_SSO_CHECK_TEST_USER); Qlik "
                "creates the user on first login if it does not exist",
            )
            return None
        return QlikIdentity.parse(user)

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
        self, exc: Exception, identity: QlikIdentity, seen: list[_Seen], *, qps_ok: bool
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
        ignored = last.status in _REDIRECTS or last.inactive
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

    def _session_headers(self, identity: QlikIdentity, session: QlikSession) -> dict[str, str]:
        # What the middleware sends on every forwarded request.
        headers = {"cookie": session.cookie_header()}
        for key, value in self.target.auth.upstream_headers(identity):
            headers[key.decode("latin-1")] = value.decode("latin-1")
        return headers

    async def _whoami(self, identity: QlikIdentity, headers: dict[str, str]) -> bool:
        title = "qps/user reports the test user"
        try:
            body = json.loads((await self._get("qps/user", headers)).content)
        except (httpx.HTTPError, ValueError) as exc:
            self.report.failed("qps.user", title, type(exc).__name__, "check the proxy's health")
            return False
        ud, uid = body.get("userDirectory"), body.get("userId")
        if not isinstance(uid, str):
            self.report.failed(
                "qps.user",
                title,
                "the session cookie is not accepted (qps/user says inactive)",
                "qlik.cookie_name must equal the virtual proxy's 'Session cookie header name', "
                "and [qps] must be the API of this virtual proxy",
            )
            return False
        if f"{ud}\\{uid}".lower() != identity.user_key().lower():
            self.report.failed(
                "qps.user",
                title,
                f"Qlik reports {ud}\\{uid}",
                "the virtual proxy maps identities differently: check its user directory settings",
            )
            return False
        self.report.passed("qps.user", title, f"{ud}\\{uid}")
        return True

    async def _xrfkey(self, headers: dict[str, str]) -> None:
        title = "xrfkey round trip (qrs/about through the proxy)"
        key = "0123456789abcdef"
        response = await self.upstream.client.get(
            self.base + "qrs/about",
            params={"xrfkey": key},
            headers={"host": self.host, "X-Qlik-Xrfkey": key, **headers},
        )
        if response.status_code == 403 and "xsrf" in response.text.lower():
            self.report.failed(
                "xrfkey",
                title,
                "Qlik answered 403 'XSRF prevention check failed'",
                "something between this machine and Qlik drops the X-Qlik-Xrfkey header or the "
                "xrfkey query parameter",
            )
        elif response.is_success:
            self.report.passed("xrfkey", title, "accepted")
        else:
            self.report.skipped("xrfkey", title, f"qrs/about answered {response.status_code}")

    async def _csrf(self, headers: dict[str, str]) -> str | None:
        title = "qps/csrftoken"
        response = await self._get("qps/csrftoken", headers)
        token: str | None = response.headers.get("qlik-csrf-token")
        if response.status_code == 200 and token:
            self.report.passed("csrf", title, "token issued (extended WebSocket CSRF protection)")
            return token
        if response.status_code == 404:
            self.report.passed("csrf", title, "no endpoint (Qlik before November 2024): no token")
            return None
        self.report.failed(
            "csrf",
            title,
            f"answered {response.status_code} without a qlik-csrf-token header",
            "the session is not accepted for qps/csrftoken: check the cookie name and that the "
            "virtual proxy is the one logged in to",
        )
        return None

    async def _websocket(self, headers: dict[str, str], token: str | None) -> None:
        app_id = self.config.check.app_id
        origin = self.config.app.origin or (
            ("https://" if self.target.is_https else "http://") + self.host
        )
        title = f"engine WebSocket with Origin {origin}"
        scheme = "wss" if self.target.is_https else "ws"
        query = f"?qlik-csrf-token={token}" if token else ""
        uri = f"{scheme}://{self.host}{self.ctx.base_path}app/{app_id}{query}"
        try:
            async with connect(
                uri,
                host=self.upstream.host,
                port=self.upstream.port,
                ssl=self.upstream.ssl_context,
                server_hostname=self.upstream.host if self.upstream.ssl_context else None,
                origin=origin,  # type: ignore[arg-type]
                additional_headers=headers,
                open_timeout=self.target.timeouts.websocket_open,
                max_size=None,
                proxy=None,
            ) as ws:
                first = json.loads(await ws.recv(decode=True))
        except InvalidStatus as exc:
            status = exc.response.status_code
            origin_host = urlsplit(origin).hostname or ""
            host_name = urlsplit(f"//{self.host}").hostname or ""
            if status == 403 and origin_host != host_name:
                fix = (
                    f"add '{origin_host}' to the virtual proxy's Host allow list (QMC > Virtual "
                    f"proxies > '{self.target.prefix}' > Advanced > Host allow list)"
                )
            elif status == 403:
                fix = "Qlik refused the qlik-csrf-token: it must come from this session's qps/csrftoken"
            else:
                fix = "check that the engine WebSocket path is proxied unchanged"
            self.report.failed("websocket", title, f"handshake refused with {status}", fix)
            return
        except (InvalidHandshake, OSError, TimeoutError, ValueError) as exc:
            self.report.failed(
                "websocket", title, f"failed ({type(exc).__name__})", "check WebSocket support"
            )
            return
        params = first.get("params", {}) if isinstance(first, dict) else {}
        if params.get("mustAuthenticate"):
            self.report.failed(
                "websocket",
                title,
                "connected but Qlik asks to authenticate",
                "the session cookie was not accepted on the socket: check qlik.cookie_name",
            )
            return
        self.report.passed("websocket", title, "accepted, authenticated")

    def _cookie_attributes(self) -> None:
        title = f"session cookie attributes for embedding '{self.config.app.embedding}'"
        wanted = self.ctx.effective_cookie_name
        cookie = next(
            (c for s in self.seen for c in s.set_cookies if c.split("=", 1)[0].strip() == wanted),
            None,
        )
        if cookie is None:
            self.report.skipped(
                "cookie", title, "Qlik set no cookie (session made via the QPS API)"
            )
            return
        attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
        samesite = next((a.split("=", 1)[1] for a in attributes if a.startswith("samesite=")), None)
        secure = "secure" in attributes
        shown = f"SameSite={samesite or '(none)'}, Secure={'yes' if secure else 'no'}"
        if self.config.app.embedding == "proxy":
            self.report.passed(
                "cookie", title, f"{shown}; the cookie stays in the middleware, any value works"
            )
            return
        if self.target.is_https and samesite == "none" and secure:
            self.report.passed("cookie", title, shown)
            return
        self.report.failed(
            "cookie",
            title,
            shown + ("" if self.target.is_https else " over plain http"),
            "cross-site embedding needs Qlik over https with SameSite=None and Secure: QMC > "
            f"Virtual proxies > '{self.target.prefix}' > Advanced: SameSite attribute (HTTPS) = "
            "None, 'Has secure attribute (HTTPS)' on",
        )

    async def cleanup(self) -> None:
        """End every Qlik session this check created (cookies from any recorded answer)."""
        pairs: set[tuple[str, str]] = set()
        for seen in self.seen:
            if not seen.path.endswith("qps/user"):
                continue  # only logins set Qlik's session cookie
            for header in seen.set_cookies:
                name, sep, value = header.split(";", 1)[0].partition("=")
                if sep and value.strip():
                    pairs.add((name.strip(), value.strip()))
        for name, value in pairs:
            with contextlib.suppress(httpx.HTTPError):
                await self.upstream.client.delete(
                    self.base + "qps/user", headers={"host": self.host, "cookie": f"{name}={value}"}
                )
        for identity, session in self._qps_sessions:
            with contextlib.suppress(QlikError):
                await self.target.auth.logout(identity, session, self.ctx)
