"""The Qlik-level checks in order: virtual proxy, login, `qps/user`, xrfkey, CSRF token, engine
WebSocket with the app's Origin, and the session cookie's attributes for the embedding mode."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from ..identity import QlikIdentity
from ..stores.base import QlikSession
from .context import REDIRECTS
from .login import LoginChecks

__all__ = ["QlikProbe"]


class QlikProbe(LoginChecks):
    """One run of the Qlik-level checks; `run()` then always `cleanup()`."""

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
        if response.status_code in REDIRECTS:
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
