"""The Qlik-level checks in order: virtual proxy, login, `qps/user`, xrfkey, CSRF token, the engine
(a real request over the WebSocket, with the app's Origin), and the session cookie's attributes
for the embedding mode. A step passes only on an answer that proves it; an answer it cannot read
fails it, quoting the answer (`excerpt`: status, type, the start of the body, secrets blanked).

Longer than most modules on purpose: the Qlik-level steps run in one order, each deciding what
the next may assume, so they read as one probe.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import httpx2 as httpx

from ..errors import ConfigurationError, QlikError
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from .context import excerpt, json_body
from .engine import EngineOutcome, ask_engine, list_apps
from .login import LoginChecks
from .vp_settings import read_virtual_proxy

__all__ = ["QlikProbe"]

_ENGINE_DATA = "engineData"


class QlikProbe(LoginChecks):
    """One run of the Qlik-level checks; `run()` then always `cleanup()`."""

    async def run(self, *, qps_ok: bool, can_login: bool = True) -> None:
        if await self._virtual_proxy() is False:
            return
        if self.config.qps.qrs_url:
            await self._vp_settings()
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
        await self._engine(identity, headers, token)
        self._cookie_attributes()

    async def _vp_settings(self) -> None:
        prefix = self.target.prefix
        title = f"virtual proxy '{prefix}' settings (QRS)"
        try:
            vp = await read_virtual_proxy(self.config, prefix)
        except (QlikError, ConfigurationError, httpx.HTTPError) as exc:
            reason = (
                exc.message
                if isinstance(exc, QlikError | ConfigurationError)
                else type(exc).__name__
            )
            self.report.failed(
                "vp.settings",
                title,
                f"cannot read them: {reason}",
                "qps.qrs_url must be the QRS API (https://<qlik host>:4242) of this site, reached "
                "with the certificate exported from its QMC; remove qps.qrs_url to skip this step",
            )
            return
        minutes = vp.get("sessionInactivityTimeout") if vp else None
        if not isinstance(minutes, int | float) or minutes <= 0:
            self.report.failed(
                "vp.settings",
                title,
                "QRS lists no such virtual proxy"
                if vp is None
                else "no session inactivity timeout",
                "qps.qrs_url must be the QRS of the site whose proxy qlik.url names",
            )
            return
        ttl = self.target.session_ttl
        if ttl < minutes * 60:
            self.report.passed(
                "vp.settings",
                title,
                f"Session inactivity timeout {minutes:g} min; qlik.session_ttl {ttl:g} s is below it",
            )
            return
        below = max(30, int(minutes * 60 * 5 / 6))
        self.report.failed(
            "vp.settings",
            title,
            f"qlik.session_ttl is {ttl:g} s, but the VP's Session inactivity timeout of "
            f"{minutes:g} min ends Qlik's session first: the middleware would reuse dead sessions",
            f"set qlik.session_ttl = {below} (under {minutes:g} min, with a margin), or raise the "
            f"timeout in QMC > Virtual proxies > '{prefix}' > Identification",
            {"config": {"qlik.session_ttl": below}},
        )

    def _identity(self) -> QlikIdentity | None:
        user = self.config.check.test_user
        if user is None:
            self.report.failed(
                "login",
                "test login",
                "no test identity",
                "set [check] test_user = 'DIRECTORY\\user' (QLIK_SSO_CHECK_TEST_USER); Qlik "
                "creates the user on first login if it does not exist",
                {"config": {"check.test_user": "<DIRECTORY\\user>"}},
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
            response = await self._get("qps/user", headers)
        except httpx.HTTPError as exc:
            self.report.failed("qps.user", title, type(exc).__name__, "check the proxy's health")
            return False
        body = json_body(response)
        if response.status_code == 403 and "access pass" in response.text.lower():
            fix, action = self._access_fix("no access pass", identity)
            self.report.failed("qps.user", title, "Qlik: no access pass", fix, action)
            return False
        if response.status_code != 200 or not isinstance(body, dict):
            self.report.failed(
                "qps.user",
                title,
                f"an answer that is not qps/user JSON: {excerpt(response)}",
                "check that qlik.url is the Qlik proxy and nothing in between rewrites answers",
            )
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
            fix, action = self._other_user_fix(str(ud), uid, identity)
            self.report.failed("qps.user", title, f"Qlik reports {ud}\\{uid}", fix, action)
            return False
        self._confirm_vp(body.get("logoutUri"))
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
        elif response.status_code == 200 and isinstance(json_body(response), dict):
            self.report.passed("xrfkey", title, "accepted")
        else:
            self.report.skipped("xrfkey", title, f"qrs/about answered {excerpt(response, 60)}")

    async def _csrf(self, headers: dict[str, str]) -> str | None:
        title = "qps/csrftoken"
        response = await self._get("qps/csrftoken", headers)
        token: str | None = response.headers.get("qlik-csrf-token")
        if response.is_success and token:  # Qlik answers 204 No Content
            self.report.passed("csrf", title, "token issued (extended WebSocket CSRF protection)")
            return token
        if response.status_code == 404:
            # Releases before November 2024 have no such endpoint; the engine step tells.
            self.report.skipped("csrf", title, "404: no token (Qlik before November 2024?)")
            return None
        self.report.failed(
            "csrf",
            title,
            f"answered without a qlik-csrf-token header: {excerpt(response, 60)}",
            "the session is not accepted for qps/csrftoken: check the cookie name and that the "
            "virtual proxy is the one logged in to",
        )
        return None

    # -- the engine ---------------------------------------------------------------------------

    def _origin(self) -> str:
        return self.config.app.origin or (
            ("https://" if self.target.is_https else "http://") + self.host
        )

    def _engine_uri(self, app_id: str, token: str | None) -> str:
        scheme = "wss" if self.target.is_https else "ws"
        query = f"?qlik-csrf-token={quote(token, safe='')}" if token else ""
        return f"{scheme}://{self.host}{self.ctx.base_path}app/{quote(app_id, safe='')}{query}"

    async def _ask(self, app_id: str, token: str | None, headers: dict[str, str]) -> EngineOutcome:
        method, params = ("EngineVersion", []) if app_id == _ENGINE_DATA else ("OpenDoc", [app_id])
        return await ask_engine(
            self.upstream,
            self._engine_uri(app_id, token),
            origin=self._origin(),
            headers=headers,
            method=method,
            params=params,
            limit=self.target.timeouts.websocket_open,
        )

    async def _engine(
        self, identity: QlikIdentity, headers: dict[str, str], token: str | None
    ) -> None:
        app_id = self.config.check.app_id
        what = "engine version" if app_id == _ENGINE_DATA else f"app '{app_id}'"
        title = f"engine WebSocket ({what}) with Origin {self._origin()}"
        outcome = await self._ask(app_id, token, headers)
        if outcome.ok:
            shown = outcome.result.get("qVersion") or outcome.result.get("qReturn") or {}
            detail = "the engine answered" + (
                f" ({shown.get('qComponentVersion')})"
                if isinstance(shown, dict) and shown.get("qComponentVersion")
                else ""
            )
            self.report.passed("websocket", title, detail)
            return
        detail, fix, action = await self._engine_failure(outcome, app_id, token, headers, identity)
        self.report.failed("websocket", title, detail, fix, action)

    async def _engine_failure(
        self,
        outcome: EngineOutcome,
        app_id: str,
        token: str | None,
        headers: dict[str, str],
        identity: QlikIdentity,
    ) -> tuple[str, str, dict[str, object] | None]:
        prefix = self.target.prefix
        if outcome.status is not None:
            return self._refused(outcome.status, token)
        notice = outcome.notice
        if notice == "OnNoEngineAvailable":
            return await self._no_engine(app_id, token, headers)
        if notice == "OnLicenseAccessDenied":
            fix, action = self._access_fix("no access pass", identity)
            return "OnLicenseAccessDenied: the user has no access pass", fix, action
        if notice == "OnMaxParallelSessionsExceeded":
            fix, action = self._access_fix("too many sessions", identity)
            return "OnMaxParallelSessionsExceeded", fix, action
        if notice == "mustAuthenticate":
            return (
                "connected, but Qlik asks to authenticate (mustAuthenticate)",
                "the session cookie was not accepted on the socket: check qlik.cookie_name and "
                "that the WebSocket reaches the same virtual proxy",
                None,
            )
        if notice in ("OnSessionTimedOut", "OnSessionClosed"):
            return (
                f"{notice}: Qlik ended the session while the engine was opened",
                f"check the virtual proxy's session inactivity timeout (QMC > Virtual proxies > "
                f"'{prefix}' > Identification) and that nothing logs the test user out",
                None,
            )
        if notice is not None:
            return f"fatal notice {notice}", "see Qlik's proxy and engine logs for the notice", None
        return (
            outcome.error or "no answer",
            "check that the engine WebSocket path (/<prefix>/app/...) is proxied unchanged by "
            "anything in front of Qlik, with its Upgrade headers",
            None,
        )

    def _refused(self, status: int, token: str | None) -> tuple[str, str, dict[str, object] | None]:
        prefix = self.target.prefix
        origin_host = urlsplit(self._origin()).hostname or ""
        host_name = urlsplit(f"//{self.host}").hostname or ""
        detail = f"handshake refused with {status}"
        if status == 403 and origin_host != host_name:
            return (
                detail + f" (Origin host '{origin_host}' is not the Host '{host_name}')",
                f"add '{origin_host}' to the virtual proxy's Host allow list (QMC > Virtual "
                f"proxies > '{prefix}' > Advanced > Host allow list; host names only, no scheme, "
                "port or IP)",
                {"virtual_proxy": {"prefix": prefix, "add": {"host_allow_list": origin_host}}},
            )
        if status == 403 and token is None:
            path = f"{self.ctx.base_path}qps/csrftoken"
            return (
                detail + " with no qlik-csrf-token: Qlik wants one (extended WebSocket CSRF "
                "protection, November 2024 and later) but qps/csrftoken answered 404",
                f"something in front of Qlik does not forward {path}: let it through to Qlik",
                {"front_end": {"forward": path}},
            )
        if status == 403:
            return (
                detail,
                "Qlik refused the qlik-csrf-token: it must come from this session's "
                "qps/csrftoken, on a socket without an Authorization header",
                None,
            )
        return detail, "check that the engine WebSocket path is proxied unchanged", None

    async def _no_engine(
        self, app_id: str, token: str | None, headers: dict[str, str]
    ) -> tuple[str, str, dict[str, object] | None]:
        prefix = self.target.prefix
        apps = None
        if app_id != _ENGINE_DATA:
            apps = await list_apps(
                self.upstream,
                self._engine_uri(_ENGINE_DATA, token),
                origin=self._origin(),
                headers=headers,
                limit=self.target.timeouts.websocket_open,
            )
        if apps is None:
            return (
                "OnNoEngineAvailable: no engine serves this virtual proxy",
                f"in the QMC, Virtual proxies > '{prefix}' > Load balancing: add the engine "
                "node(s) that hold the apps (Load balancing nodes), and check that the engine "
                "service runs",
                {"virtual_proxy": {"prefix": prefix, "set": {"load_balancing_nodes": ["Central"]}}},
            )
        named = [i for i, name in apps if name.lower() == app_id.lower()]
        if named:
            return (
                f"OnNoEngineAvailable: there is no app with the ID '{app_id}'; it is the NAME "
                f"of the app {named[0]}",
                f"set check.app_id = '{named[0]}' (an app's ID, QMC > Apps > ID, not its name)",
                {"config": {"check.app_id": named[0]}},
            )
        listed = ", ".join(f"{i} ({name})" for i, name in apps[:5]) or "none"
        return (
            f"OnNoEngineAvailable: the engine has no app '{app_id}' this user can open "
            f"(apps it lists: {listed})",
            "set check.app_id to the ID of an app the test user may open (QMC > Apps > ID), or "
            "to 'engineData'",
            {"config": {"check.app_id": "<app ID from QMC > Apps>"}},
        )

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
        prefix = self.target.prefix
        self.report.failed(
            "cookie",
            title,
            shown + ("" if self.target.is_https else " over plain http"),
            "cross-site embedding needs Qlik over https with SameSite=None and Secure: QMC > "
            f"Virtual proxies > '{prefix}' > Advanced: SameSite attribute (HTTPS) = None, 'Has "
            "secure attribute (HTTPS)' on",
            {
                "virtual_proxy": {
                    "prefix": prefix,
                    "set": {"samesite_https": "None", "secure_https": True},
                }
            },
        )
