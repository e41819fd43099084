"""The simulated tenant's HTTPS port: routing, who is calling, web integrations, rate limits.

    POST /login/jwt-session      JWT -> cookie session (eas.sid, _csrfToken + .sig)   Tier 2
    POST /oauth/token            client credentials / impersonation / token exchange  Tier 2
    GET  /api/v1/csrf-token      204 + qlik-csrf-token header                          Tier 1
    GET  /api/v1/users/me        301 to the caller's user                              Tier 1
    GET  /api/v1/users[/{id}]    look up                                               Tier 1
    POST /api/v1/users           create (provisioning)                                 Tier 2
    GET  /single/?appid=…        the single-integration page (pages.py); /login
    WS   /app/<appId>            the engine (engine_socket.py)

A caller is a bearer access token (`Authorization: Bearer`) or a cookie session; cookie callers
must send `qlik-csrf-token` on modifying requests [inferred from qlik-api's cookie auth], and a
foreign browser `Origin` needs a web integration (origins.py). Every answer is recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from .._asgi import (
    Message,
    Receive,
    Scope,
    Send,
    header_pairs,
    parse_cookies,
    query_get,
    send_body,
    send_json,
)
from ..api_app import _read_body
from ..demo_apps import DemoApp
from ..faults import Faults
from .answers import QlikCloudError, error_body, rate_limit_body
from .engine_socket import serve_engine_socket
from .jwt_check import JwtRejection, check_login_jwt
from .oauth import TokenEndpoint
from .origins import OriginPolicy
from .pages import is_page, serve_page
from .ratelimit import RateLimiter
from .state import CloudRequest, CloudState
from .tenant import CloudUser, JwtIdentityProvider
from .users import MAX_USER_BODY, Principal, UsersApi

__all__ = ["CloudApp"]

_MODIFYING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REDACTED = frozenset({"authorization", "cookie"})
_PREFLIGHT_HEADERS = "authorization, content-type, qlik-csrf-token, qlik-web-integration-id"


def _unauthorized(detail: str) -> QlikCloudError:
    return QlikCloudError(401, "AUTH-1", "Unauthorized", detail)


class CloudApp:
    """ASGI app of one simulated tenant (HTTP here; WebSockets in engine_socket.py)."""

    def __init__(
        self,
        state: CloudState,
        *,
        providers: tuple[JwtIdentityProvider, ...],
        tokens: TokenEndpoint,
        origins: OriginPolicy,
        limiter: RateLimiter,
        faults: Faults,
        apps: Mapping[str, DemoApp],
        base_url: Callable[[], str],
        jwt_leeway: float,
    ) -> None:
        self.state = state
        self.providers = providers
        self.tokens = tokens
        self.origins = origins
        self.limiter = limiter
        self.faults = faults
        self.apps = apps
        self._base_url = base_url
        self.jwt_leeway = jwt_leeway

    def record(self, scope: Scope, *, websocket: bool = False) -> CloudRequest:
        headers = [
            (k.lower(), "<redacted>" if k.lower() in _REDACTED else v)
            for k, v in header_pairs(scope)
        ]
        record = CloudRequest(
            method=scope.get("method", "GET"),
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            time=self.state.clock(),
            websocket=websocket,
        )
        self.state.requests.append(record)
        return record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await serve_engine_socket(self, scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    # -- callers ----------------------------------------------------------------------------------

    def principal(
        self, headers: list[tuple[str, str]], query: str, *, query_token: bool = False
    ) -> Principal | None:
        """Who is calling: bearer token, `accessToken` query (WebSockets), or cookie session."""
        authorization = next((v for k, v in headers if k == "authorization"), None)
        value: str | None = None
        purposes: tuple[str, ...] = ("access",)
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise _unauthorized("malformed Authorization header")
        elif query_token and query_get(query, "accessToken"):
            value, purposes = query_get(query, "accessToken"), ("access", "websocket")
        if value is not None:
            token = self.state.token(value.strip(), purposes)
            if token is None:
                raise _unauthorized("invalid or expired access token")
            user = self.state.user_by_id(token.user_id) if token.user_id else None
            return Principal(user, token.client_id, token.scopes)
        cookies = dict(reversed(parse_cookies(headers)))
        session = self.state.session(cookies.get("eas.sid"), cookies.get("eas.sid.sig"))
        if session is None:
            return None
        user = self.state.user_by_id(session.user_id)
        return Principal(user, None, ("user_default",), session) if user else None

    # -- HTTP ---------------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = self.record(scope)
        headers = [(k.lower(), v) for k, v in header_pairs(scope)]

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        if self.faults.latency > 0:
            await asyncio.sleep(self.faults.latency)
        forced = self.faults.take_forced_status(record.path)
        body, too_big = await _read_body(receive)
        if forced is not None:
            await send_json(recording_send, forced, error_body(forced, "SIM-FAULT", "Injected"))
            return
        origin = self.origins.foreign_origin(headers)
        extra = self.origins.cors_headers(origin) if origin else []
        if record.method == "OPTIONS":
            await self._preflight(origin, recording_send)
            return
        if is_page(record.method, record.path):
            try:
                principal = self.principal(headers, record.query)
            except QlikCloudError:
                principal = None
            if principal is not None and principal.user is not None:
                record.user = principal.user.subject
            signed_in = principal is not None and principal.user is not None
            await serve_page(
                record.path, record.query, signed_in, self.apps, self._base_url(), recording_send
            )
            return
        try:
            status, payload, more = self._route(record, headers, body, too_big, origin)
        except QlikCloudError as exc:
            status, payload, more = exc.status, exc.body, []
        except _RateLimited as limited:
            status, payload = 429, rate_limit_body(limited.retry_after)
            more = [("retry-after", str(limited.retry_after))]
        if status == 204:
            await send_body(recording_send, 204, b"", "text/plain", extra + more)
        else:
            await send_json(recording_send, status, payload, extra + more)

    async def _preflight(self, origin: str | None, send: Send) -> None:
        """A CORS preflight names no integration: any integration listing the origin will do."""
        if origin is None or not self.origins.listed_anywhere(origin):
            await send_body(send, 403, b"", "text/plain")
            return
        allow = [
            *self.origins.cors_headers(origin),
            ("access-control-allow-methods", "GET, POST, PUT, PATCH, DELETE"),
            ("access-control-allow-headers", _PREFLIGHT_HEADERS),
        ]
        await send_body(send, 204, b"", "text/plain", allow)

    def _route(
        self,
        record: CloudRequest,
        headers: list[tuple[str, str]],
        body: bytes,
        too_big: bool,
        origin: str | None,
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        method, path = record.method, record.path.rstrip("/") or "/"
        if (method, path) == ("POST", "/login/jwt-session"):
            self._limit(2, "login")
            if origin and not self.origins.allows(origin, headers, record.query):
                raise QlikCloudError(403, "CORS-1", "Forbidden", "origin not allowed")
            return self._jwt_session(record, headers)
        if (method, path) == ("POST", "/oauth/token"):
            form = _form(body, headers)
            client = form.get("client_id")
            self._limit(2, f"client:{client}" if isinstance(client, str) else "anonymous")
            return 200, self.tokens.handle(form, record), []
        if not path.startswith("/api/v1/"):
            raise QlikCloudError(404, "HTTP-404", "Not found")
        principal = self.principal(headers, record.query)
        if principal is None:
            raise _unauthorized("not logged in")
        record.user = principal.user.subject if principal.user else None
        record.client_id = principal.client_id
        key = f"user:{principal.user.id}" if principal.user else f"client:{principal.client_id}"
        self._limit(2 if method in _MODIFYING else 1, key)
        if principal.session is not None:
            if origin and not self.origins.allows(origin, headers, record.query):
                raise QlikCloudError(403, "CORS-1", "Forbidden", "origin not allowed")
            sent = next((v for k, v in headers if k == "qlik-csrf-token"), None)
            if method in _MODIFYING and sent != principal.session.csrf_token:
                raise QlikCloudError(403, "CSRF-1", "Forbidden", "invalid CSRF token")
        users = UsersApi(self.state, self._base_url())
        if (method, path) == ("GET", "/api/v1/csrf-token"):
            csrf = principal.session.csrf_token if principal.session else self.state.sign(key)
            return 204, None, [("qlik-csrf-token", csrf)]
        if (method, path) == ("GET", "/api/v1/users/me"):
            return users.me(principal)
        if (method, path) == ("GET", "/api/v1/users"):
            return users.lookup(principal, query_get(record.query, "filter"))
        if (method, path) == ("POST", "/api/v1/users"):
            if too_big or len(body) > MAX_USER_BODY:
                raise QlikCloudError(413, "USERS-5", "Payload too large", "limit of 500kB")
            return users.create(principal, _json(body))
        if method == "GET" and path.count("/") == 4 and path.startswith("/api/v1/users/"):
            return users.get(principal, path.rsplit("/", 1)[1])
        raise QlikCloudError(404, "HTTP-404", "Not found")

    def _limit(self, tier: int, principal_key: str) -> None:
        retry_after = self.limiter.admit(tier, principal_key)
        if retry_after is not None:
            raise _RateLimited(retry_after)

    def _jwt_session(
        self, record: CloudRequest, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        authorization = next((v for k, v in headers if k == "authorization"), "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise QlikCloudError(401, "LOGIN-JWT-REJECTED", "Unauthorized", "missing bearer JWT")
        try:
            claims = check_login_jwt(
                token.strip(),
                self.providers,
                now=self.state.clock(),
                used_jti=self.state.used_jti,
                leeway=self.jwt_leeway,
            )
        except JwtRejection as exc:
            raise QlikCloudError(exc.status, exc.code, exc.title, exc.detail) from None
        self.state.remember_jti(claims.issuer, claims.jti, claims.expires)
        user = self.state.users_by_subject.get(claims.subject)
        if user is not None and user.status in ("disabled", "deleted"):
            raise QlikCloudError(403, "AUTH-5", "Forbidden", "the user is disabled")
        if user is None:
            user = self.state.add_user(CloudUser(subject=claims.subject))
        # A JWT login creates the user and updates name, email and groups on the fly.
        user.name, user.email, user.groups = claims.name, claims.email, list(claims.groups)
        user.status = "active"
        record.user = user.subject
        session = self.state.open_session(user)
        attributes = "Path=/; Secure; HttpOnly; SameSite=None"
        cookies = [
            ("eas.sid", session.id),
            ("eas.sid.sig", self.state.sign(session.id)),
            ("_csrfToken", session.csrf_token),
            ("_csrfToken.sig", self.state.sign(session.csrf_token)),
        ]
        return 200, {}, [("set-cookie", f"{n}={v}; {attributes}") for n, v in cookies]


class _RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        raise QlikCloudError(400, "HTTP-400", "Bad request", "malformed JSON") from None


def _form(body: bytes, headers: list[tuple[str, str]]) -> dict[str, Any]:
    """A token request body: JSON, or form-encoded (`user_lookup` as a JSON string there)."""
    content_type = next((v for k, v in headers if k == "content-type"), "")
    if "application/x-www-form-urlencoded" in content_type:
        form: dict[str, Any] = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        if isinstance(form.get("user_lookup"), str):
            form["user_lookup"] = _json(form["user_lookup"].encode())
        return form
    data = _json(body)
    if not isinstance(data, dict):
        raise QlikCloudError(400, "invalid_request", "Invalid request parameters", "JSON object")
    return data
