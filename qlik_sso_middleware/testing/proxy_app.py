"""The simulated proxy port (443 in production): virtual-proxy routing, authentication, pages, WS.

Virtual proxy routing (`route_prefix`): the first path segment names a linked VP, or is one of
QPS's reserved words (`hub`, `qps`, `app`, ...: the default VP's own paths); anything else names no
VP and gets QPS's 400 page, even on a site with a default VP (a VP not linked to this proxy answers
the same), unless the simulator runs with `unknown_prefix="default_vp"`.

Authentication order on every request to a VP, as QPS does it: valid session cookie ->
`qlikTicket` query -> identity header (header VPs) -> anonymous -> 302 to the authentication
module: the VP's redirect URI, else Windows authentication for a User-Agent containing the VP's
Windows authentication pattern (`internal_windows_authentication/`, a 401 `Negotiate`/`NTLM`
challenge the simulator never satisfies), else the form login. The user's access pass is checked
when Qlik itself is used (hub, apps, files, the engine after its greeting), not by the proxy's
own API (`qps/user`, `qps/csrftoken`) nor the QPS API, which create sessions without it. URLs that QPS builds (redirects, `loginUri`, `logoutUri`) use the request's `Host` header, as QPS does; that is
why a proxy in front of it must preserve `Host`.

Longer than most modules on purpose: QPS's order of authentication is one decision table, and
splitting it would hide the order that the simulator exists to reproduce.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._asgi import (
    Message,
    Receive,
    Scope,
    Send,
    drain,
    header_pairs,
    hostname_of,
    html_page,
    parse_cookies,
    query_get,
    send_body,
    send_json,
)
from .auth_module import WindowsAuthApp
from .content import serve_content
from .demo_apps import DemoApp
from .embed_endpoints import (
    EMBED_RUNTIME_PREFIX,
    PRODUCT_INFO_PATH,
    serve_embed_runtime,
    serve_product_info,
)
from .faults import Faults
from .pages import forms_login_page
from .records import RecordedRequest, SimSession
from .sim_endpoints import handle_sim_endpoint
from .state import LoginRefused, SimState
from .user_tag import tag_header
from .virtual_proxy import VirtualProxy
from .websocket import serve_websocket
from .xrfkey import XRF_FAILED, xrfkey_pair_refused

__all__ = ["ProxyApp", "RequestContext"]

MAX_SESSIONS_TEXT = (
    "You cannot access Qlik Sense because you have too many sessions active in parallel"
)
NO_ACCESS_PASS_TEXT = "You cannot access Qlik Sense because you have no access pass"
#: Paths QPS reads as its own (case-insensitive) right after the prefix: `/hub/` is the default
#: VP's hub, `/b_/hub/` the hub of VP `b_`. Qlik names qmc, client, hub, qps and app; the rest are
#: the other first segments its clients use.
RESERVED_SEGMENTS = frozenset(
    {
        "qmc", "client", "hub", "qps", "app", "sense", "single", "resources", "extensions",
        "content", "api", "qrs", "dev-hub", "favicon.ico", "internal_forms_authentication",
        "internal_windows_authentication",
    }
)  # fmt: skip
#: Requests with more header bytes than this get QPS's 400 "header is incorrect" page.
MAX_HEADER_BYTES = 64 * 1024


@dataclass
class RequestContext:
    """Per-request facts shared by the HTTP and WebSocket paths."""

    vp: VirtualProxy
    rest: str
    https: bool
    host: str
    headers: list[tuple[str, str]]
    cookie_pairs: list[tuple[str, str]]
    query: str
    record: RecordedRequest
    set_cookie: list[str] = field(default_factory=list)
    session: SimSession | None = None
    created_by: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.https else "http"

    @property
    def base(self) -> str:
        """`scheme://Host/prefix` for URLs QPS builds from the request."""
        prefix = f"/{self.vp.prefix}" if self.vp.prefix else ""
        return f"{self.scheme}://{self.host}{prefix}"

    def header_values(self, name: str) -> list[str]:
        lowered = name.lower()
        return [v for k, v in self.headers if k.lower() == lowered]


class ProxyApp:
    """ASGI app of the proxy port."""

    def __init__(
        self,
        state: SimState,
        faults: Faults,
        apps: Mapping[str, DemoApp],
        *,
        https: bool,
        api_port: Callable[[], int | None],
        unknown_prefix: str = "bad_request",
        embed_runtime: Path | None = None,
        xrfkey_check: bool = True,
        tag_user: bool = False,
    ) -> None:
        self.state = state
        self.unknown_prefix = unknown_prefix
        self.faults = faults
        self.apps = apps
        self.https = https
        self.embed_runtime = embed_runtime
        self.xrfkey_check = xrfkey_check
        self.tag_user = tag_user
        self._api_port = api_port
        self.targets: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await serve_websocket(self, scope, receive, send)

    # -- shared ---------------------------------------------------------------------------------

    def context(
        self, scope: Scope, websocket: bool
    ) -> tuple[RecordedRequest, RequestContext | None]:
        """Record the request and resolve its virtual proxy (None: unknown prefix)."""
        headers = header_pairs(scope)
        cookie_pairs = parse_cookies(headers)
        cookies: dict[str, str] = {}
        for name, value in cookie_pairs:
            cookies.setdefault(name, value)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        record = RecordedRequest(
            port="proxy",
            method=scope.get("method", "GET"),
            path=raw_path.decode("latin-1"),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            cookies=cookies,
            time=self.state.clock(),
            websocket=websocket,
        )
        self.state.record_request(record)
        routed = self.route_prefix(scope["path"])
        if routed is None:
            return record, None
        vp, rest = routed
        record.prefix = vp.prefix
        host = next((v for k, v in headers if k.lower() == "host"), "")
        context = RequestContext(
            vp=vp,
            rest=rest,
            https=self.https,
            host=host,
            headers=headers,
            cookie_pairs=cookie_pairs,
            query=record.query,
            record=record,
        )
        return record, context

    def route_prefix(self, path: str) -> tuple[VirtualProxy, str] | None:
        """(virtual proxy, path after its prefix) for `path`; None: QPS's 400 page."""
        vps = self.state.vps
        first, _, rest = path.lstrip("/").partition("/")
        if first and first in vps:
            vp = vps[first]
            return (vp, rest) if vp.linked else None
        default = vps.get("")
        if default is None or not default.linked:
            return None
        if not first or first.lower() in RESERVED_SEGMENTS:
            return default, path.lstrip("/")
        if self.unknown_prefix == "default_vp":
            return default, rest  # the default VP answers as if the prefix were its own
        return None

    def authenticate(
        self, ctx: RequestContext, *, allow_login: bool = True, resource: bool = True
    ) -> None:
        """Find or create the request's session (sets ctx.session / ctx.set_cookie).

        `resource`: the request uses Qlik (hub, apps, files, engine), so the user's access pass
        is checked; the proxy's own API (`qps/...`) is answered without it. Raises
        `LoginRefused` when a login was refused (cap), or the access pass is missing.
        """
        vp = ctx.vp
        cookie_name = vp.session_cookie_name(self.https)
        for name, value in ctx.cookie_pairs:
            if name == cookie_name:
                session = self.state.lookup(vp.prefix, value)
                if session is not None:
                    if resource:
                        self.state.use(session)  # LoginRefused: no access pass
                    self._use(ctx, session, None)
                    return
        if not allow_login:
            return
        ticket_value = query_get(ctx.query, "qlikTicket")
        if ticket_value:
            ticket = self.state.redeem_ticket(vp.prefix, ticket_value)
            if ticket is not None:
                session = self.state.login(
                    vp.prefix,
                    ticket.user_directory,
                    ticket.user_id,
                    ticket.attributes,
                    check_access=resource,
                )
                self._use(ctx, session, "ticket")
                return
        if vp.auth.startswith("header") and vp.anonymous != "always":
            values = ctx.header_values(vp.header_name)
            # Repeated headers reach QPS (.NET) joined with ", " -- which is never a valid identity.
            identity = vp.parse_identity(", ".join(values)) if values else None
            if identity is not None:
                session = self.state.login(vp.prefix, *identity, check_access=resource)
                self._use(ctx, session, "header")
                return
        if vp.anonymous in ("allow", "always"):
            anonymous = f"anonymous{uuid.uuid4()}"
            session = self.state.login(vp.prefix, "NONE", anonymous, check_access=resource)
            self._use(ctx, session, "anonymous")

    def can_log_in(self, ctx: RequestContext) -> bool:
        """Whether step 3 or 4 of the authentication order would log this request in."""
        vp = ctx.vp
        if vp.anonymous in ("allow", "always"):
            return True
        values = ctx.header_values(vp.header_name)
        return (
            vp.auth.startswith("header")
            and bool(values)
            and vp.parse_identity(", ".join(values)) is not None
        )

    def _use(self, ctx: RequestContext, session: SimSession, created_by: str | None) -> None:
        ctx.session = session
        ctx.created_by = created_by
        ctx.record.session_id = session.id
        ctx.record.user = session.user
        if created_by is not None:
            ctx.set_cookie.append(ctx.vp.set_cookie(session.id, self.https))

    def login_uri(self, ctx: RequestContext) -> str:
        """Where QPS sends an unauthenticated request (built from the request's Host)."""
        target_id = str(uuid.uuid4())
        self.targets[target_id] = f"{ctx.scheme}://{ctx.host}{ctx.record.path}" + (
            f"?{ctx.query}" if ctx.query else ""
        )
        vp = ctx.vp
        if vp.auth_module_redirect_uri:
            hostname = hostname_of(ctx.host) or "localhost"
            if ":" in hostname:
                hostname = f"[{hostname}]"
            rest_base = f"/qps/{vp.prefix}/" if vp.prefix else "/qps/"
            sep = "&" if "?" in vp.auth_module_redirect_uri else "?"
            return (
                f"{vp.auth_module_redirect_uri}{sep}targetId={target_id}"
                f"&proxyRestUri=https://{hostname}:{self._api_port()}{rest_base}"
            )
        agent = " ".join(ctx.header_values("user-agent"))
        if vp.windows_auth_pattern and vp.windows_auth_pattern in agent:
            return f"{ctx.base}/internal_windows_authentication/?targetId={target_id}"
        return f"{ctx.base}/internal_forms_authentication/?targetId={target_id}"

    # -- HTTP -----------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        record, ctx = self.context(scope, websocket=False)
        extra: list[tuple[bytes, bytes]] = []
        if ctx is not None:
            extra = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in ctx.vp.additional_response_headers
            ]

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                if ctx is not None:
                    message["headers"] = list(message.get("headers", []))
                    message["headers"] += [
                        (b"set-cookie", c.encode("latin-1")) for c in ctx.set_cookie
                    ]
                    message["headers"] += extra
                    if self.tag_user and ctx.session is not None:
                        message["headers"].append(tag_header(ctx.session.user))
            await send(message)

        if self.faults.latency > 0:
            await asyncio.sleep(self.faults.latency)
        forced = self.faults.take_forced_status(record.path)
        if forced is not None:
            await drain(receive)
            page = html_page(f"Error {forced}", "Injected failure")
            await send_body(recording_send, forced, page)
            return
        if ctx is None or _header_bytes(record.headers) > MAX_HEADER_BYTES:
            await drain(receive)
            page = html_page("Bad request", "The http request header is incorrect.")
            await send_body(recording_send, 400, page)
            return
        try:
            await self._route(ctx, scope, receive, recording_send)
        except LoginRefused as refused:
            ctx.set_cookie.clear()
            text = MAX_SESSIONS_TEXT if refused.reason == "max_sessions" else NO_ACCESS_PASS_TEXT
            await send_body(recording_send, 403, html_page("Qlik Sense", text))

    async def _route(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        rest = ctx.rest
        method = ctx.record.method
        if rest.startswith("internal_windows_authentication"):
            # NTLM / Kerberos cannot happen here: the challenge is what a client gets to see.
            await WindowsAuthApp()(scope, receive, send)
            return
        if rest.startswith("internal_forms_authentication"):
            await drain(receive)
            target = query_get(ctx.query, "targetId") or ""
            await send_body(send, 200, forms_login_page(target))
            return
        if self.xrfkey_check and xrfkey_pair_refused(rest, ctx.query, ctx.header_values):
            await drain(receive)
            await send_body(send, 403, XRF_FAILED, "text/plain; charset=utf-8")
            return
        if rest in ("qps/user", "qps/user/"):
            await self._qps_user(ctx, method, receive, send)
            return
        self.authenticate(ctx, resource=not rest.startswith("qps/"))
        if ctx.session is None:
            await drain(receive)
            await send_body(send, 302, "", headers=[("location", self.login_uri(ctx))])
            return
        if rest in ("qps/csrftoken", "qps/csrftoken/"):
            await drain(receive)
            # 204 with the token in a header: what gopherciser (Qlik's load tester) expects.
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"qlik-csrf-token", ctx.session.csrf_token.encode("latin-1"))],
                }
            )
            await send({"type": "http.response.body", "body": b""})
        elif rest.startswith(EMBED_RUNTIME_PREFIX):
            await drain(receive)
            await serve_embed_runtime(
                self.embed_runtime, rest.removeprefix(EMBED_RUNTIME_PREFIX), send
            )
        elif rest == PRODUCT_INFO_PATH:
            await drain(receive)
            await serve_product_info(send)
        elif rest.startswith("content/_sim/"):
            cookies = dict(ctx.record.cookies)
            ctx.record.client_left = await handle_sim_endpoint(
                rest.removeprefix("content/_sim/").strip("/"),
                method,
                dict(scope),
                receive,
                send,
                ctx.session.user,
                ctx.headers,
                cookies,
            )
        else:
            await drain(receive)
            await serve_content(self.apps, rest, ctx.query, ctx.header_values, send)

    async def _qps_user(
        self, ctx: RequestContext, method: str, receive: Receive, send: Send
    ) -> None:
        await drain(receive)
        self.authenticate(ctx, resource=False)
        session = ctx.session
        if method == "DELETE":
            if session is not None:
                self.state.end(session.id, "logout")
                ctx.set_cookie.clear()
            await send_json(send, 200, {"session": "inactive", "loginUri": self.login_uri(ctx)})
            return
        if session is None:
            await send_json(send, 200, {"session": "inactive", "loginUri": self.login_uri(ctx)})
            return
        await send_json(
            send,
            200,
            {
                "userDirectory": session.user_directory,
                "userId": session.user_id,
                "userName": session.user_id,
                "logoutUri": f"{ctx.base}/qps/user",
            },
        )


def _header_bytes(headers: list[tuple[str, str]]) -> int:
    return sum(len(k) + len(v) + 4 for k, v in headers)


__all__ += ["MAX_SESSIONS_TEXT", "NO_ACCESS_PASS_TEXT"]
