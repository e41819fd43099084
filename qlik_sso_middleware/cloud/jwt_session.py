"""`JwtSessionClient`: the cookie mode's login, `POST /login/jwt-session`, and its CSRF token.

The server signs a login JWT (login_jwt.py) and sends it as `Authorization: Bearer`; Qlik answers
200 with the session cookies (`eas.sid`, `eas.sid.sig`, `_csrfToken`, `_csrfToken.sig`, per the
Login API specification). Those cookies stay on the server, held per user like a Qlik Sense
session; `csrf_token()` asks `GET /api/v1/csrf-token` for the token the engine WebSocket needs as
`qlik-csrf-token` (Qlik's own proxy sample reads the `_csrfToken` cookie instead; both agree).

Refusals: 400/401 -> `CloudJwtRejected` naming the IdP settings to compare; 403 ->
`QlikAccessDenied`; 429 beyond the queue's patience -> `CloudRateLimited`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import CloudJwtRejected, CloudRejected, QlikAccessDenied, QlikUnavailable
from ._http import CloudAnswer, CloudHttp
from .identity import CloudIdentity
from .login_jwt import LoginJwtSigner
from .pacer import RequestPacer

__all__ = ["CloudCookieSession", "JwtSessionClient"]

SESSION_COOKIE = "eas.sid"
CSRF_COOKIE = "_csrfToken"


@dataclass(frozen=True)
class CloudCookieSession:
    """A tenant session held server-side. Hazard: the cookies *are* the user's session."""

    subject: str
    cookies: tuple[tuple[str, str], ...] = field(repr=False)
    created_at: float

    def cookie_header(self) -> str:
        """The `Cookie` header value that carries the session to the tenant."""
        return "; ".join(f"{name}={value}" for name, value in self.cookies)

    def cookie(self, name: str) -> str | None:
        return next((value for n, value in self.cookies if n == name), None)


def _set_cookies(answer: CloudAnswer) -> tuple[tuple[str, str], ...]:
    pairs: dict[str, str] = {}
    for header in answer.headers.get_list("set-cookie"):
        name, sep, value = header.split(";", 1)[0].strip().partition("=")
        if sep and name:
            pairs[name] = value
    return tuple(pairs.items())


class JwtSessionClient:
    """Logs users in with JWTs signed by `signer`; `clock` stamps sessions (wall-clock seconds)."""

    def __init__(
        self,
        http: CloudHttp,
        signer: LoginJwtSigner,
        pacer: RequestPacer,
        *,
        web_integration_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self.signer = signer
        self._pacer = pacer
        self._web_integration_id = web_integration_id
        self._clock = clock

    async def login(self, identity: CloudIdentity) -> CloudCookieSession:
        """A new tenant session for `identity` (Qlik creates the user, updates name and groups)."""
        operation = "POST /login/jwt-session"

        async def call() -> CloudAnswer:
            # A fresh JWT per attempt: a retried one would be refused for its reused jti.
            headers = {"Authorization": f"Bearer {self.signer.mint(identity)}"}
            if self._web_integration_id:
                headers["qlik-web-integration-id"] = self._web_integration_id
            return await self._http.request(
                "POST", "/login/jwt-session", operation, headers=headers
            )

        answer = await self._pacer.send(call, lambda a: a.retry_after())
        if answer.status == 200:
            cookies = _set_cookies(answer)
            if not any(name == SESSION_COOKIE for name, _ in cookies):
                raise CloudRejected(
                    f"Qlik Cloud answered {operation} without an {SESSION_COOKIE} cookie"
                )
            return CloudCookieSession(identity.subject, cookies, self._clock())
        said = answer.qlik_said()
        if answer.status >= 500:
            raise QlikUnavailable(f"Qlik Cloud failed {operation}: {said}")
        if answer.status == 403:
            raise QlikAccessDenied(
                f"Qlik Cloud refused the JWT login of {identity.subject!r} ({said}): the user is "
                "disabled, or the request's origin is not in a web integration"
            )
        settings = self.signer.settings
        raise CloudJwtRejected(
            f"Qlik Cloud refused the login JWT ({said}): compare the tenant's JWT identity "
            f"provider with the jwt settings (issuer {settings.issuer!r}, key id "
            f"{settings.key_id!r}, its certificate must be the public half of private_key) and "
            "check this server's clock (NTP)",
            status=answer.status,
            code=answer.error().get("code"),
            said=said,
        )

    async def csrf_token(self, session: CloudCookieSession) -> str | None:
        """The session's CSRF token, or None when the tenant no longer knows the session."""
        operation = "GET /api/v1/csrf-token"
        headers = {"Cookie": session.cookie_header()}
        answer = await self._http.request("GET", "/api/v1/csrf-token", operation, headers=headers)
        if answer.status == 401:
            return None
        token: str | None = answer.headers.get("qlik-csrf-token")
        if answer.status not in (200, 204) or not token:
            raise CloudRejected(
                f"Qlik Cloud answered {operation} without a token ({answer.qlik_said()})"
            )
        return token
