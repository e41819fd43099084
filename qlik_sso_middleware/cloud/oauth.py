"""`OAuthTokenClient`: access tokens from `/oauth/token`, impersonating users or as the client.

    impersonate(identity)   grant urn:qlik:oauth:user-impersonation, user_lookup by subject
    client_credentials()    grant client_credentials (a machine token, e.g. for the users API)
    revoke(token)           POST /oauth/revoke: the tenant stops honouring one of the client's tokens

Every call waits its turn in the client's Tier-2 `RequestPacer`. Qlik's refusals become typed
errors that say what to change (Qlik publishes statuses, 400 / 401 / 403, but not its codes, so
the code and detail are read with RFC 6749's names and plain words as fallback):

    401                              CloudClientRejected   client id / secret
    unauthorized_client, "grant"     CloudGrantNotAllowed  enable user impersonation on the client
    invalid_scope, "scope"           CloudGrantNotAllowed  add the scope to the client
    invalid_grant, "user … not found" CloudUserNotFound    create the user first
    403                              QlikAccessDenied      user disabled / too many tokens
    429 beyond max_wait              CloudRateLimited

`revoke` sends RFC 7009's body (`token`, `token_type_hint=access_token`, the client's id and
secret) [inferred: Qlik lists `POST /oauth/revoke` without its rules]; 200 is success whether or
not the tenant knew the token; 401 is `CloudClientRejected`, 5xx `QlikUnavailable`, anything else
`CloudRejected`. Neither the token nor the secret appears in a message.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    CloudClientRejected,
    CloudGrantNotAllowed,
    CloudRejected,
    CloudUserNotFound,
    QlikAccessDenied,
    QlikUnavailable,
)
from ._http import CloudAnswer, CloudHttp
from .identity import CloudIdentity
from .pacer import RequestPacer
from .settings import OAuthClientSettings

__all__ = ["GRANT_IMPERSONATION", "AccessToken", "OAuthTokenClient"]

GRANT_IMPERSONATION = "urn:qlik:oauth:user-impersonation"
#: Lifetime assumed when an answer states none (Qlik documents `expires_at`, RFC 6749 `expires_in`).
FALLBACK_LIFETIME = 300.0


@dataclass(frozen=True)
class AccessToken:
    """A bearer token. `expires_at` is wall-clock seconds; `repr` never shows the value.

    Hazard: the value *is* the user's access to the tenant; hand it only to that user's browser.
    """

    value: str = field(repr=False)
    expires_at: float
    scope: str
    subject: str | None = None

    def expires_in(self, now: float) -> float:
        return self.expires_at - now

    def is_fresh(self, now: float, margin: float) -> bool:
        """Still valid for at least `margin` seconds."""
        return self.expires_at - now >= margin


def _expiry(data: dict[str, Any], now: float) -> float:
    expires_in = data.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return now + float(expires_in)
    expires_at = data.get("expires_at")
    if isinstance(expires_at, str):
        try:
            return dt.datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now + FALLBACK_LIFETIME


class OAuthTokenClient:
    """Token requests for one OAuth client. `clock` is wall-clock seconds (token expiry)."""

    def __init__(
        self,
        http: CloudHttp,
        client: OAuthClientSettings,
        pacer: RequestPacer,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self.client = client
        self._pacer = pacer
        self._clock = clock

    async def impersonate(self, identity: CloudIdentity) -> AccessToken:
        """An access token acting as `identity` (who must exist in the tenant)."""
        body = self._body(GRANT_IMPERSONATION)
        body["user_lookup"] = {"field": "subject", "value": identity.subject}
        return await self._token(body, "POST /oauth/token (user impersonation)", identity.subject)

    async def client_credentials(self) -> AccessToken:
        """A machine token of the client itself (no user)."""
        body = self._body("client_credentials")
        return await self._token(body, "POST /oauth/token (client credentials)", None)

    async def revoke(self, token: AccessToken | str) -> None:
        """Ask the tenant to revoke `token`, one the client obtained (RFC 7009 semantics: done once
        this returns, also when the tenant no longer knew it). Waits in the Tier-2 queue."""
        value = token.value if isinstance(token, AccessToken) else token
        if not value:
            raise ValueError("no token to revoke")
        operation = "POST /oauth/revoke"
        body = {
            "token": value,
            "token_type_hint": "access_token",
            "client_id": self.client.client_id,
            "client_secret": self.client.client_secret.reveal(),
        }

        async def call() -> CloudAnswer:
            return await self._http.request("POST", "/oauth/revoke", operation, json_body=body)

        answer = await self._pacer.send(call, lambda a: a.retry_after())
        if answer.status == 200:
            return
        said = answer.qlik_said([self.client.client_secret.reveal(), value])
        code = answer.error().get("code")
        if answer.status >= 500:
            raise QlikUnavailable(f"Qlik Cloud failed {operation}: {said}")
        if answer.status == 401:
            raise CloudClientRejected(
                f"Qlik Cloud refused OAuth client {self.client.client_id!r} for {operation} "
                f"({said}): check client_id and client_secret against Administration > OAuth "
                "in the tenant",
                status=401,
                code=code,
            )
        raise CloudRejected(
            f"Qlik Cloud refused {operation} ({said})", status=answer.status, code=code
        )

    def _body(self, grant: str) -> dict[str, Any]:
        return {
            "client_id": self.client.client_id,
            "client_secret": self.client.client_secret.reveal(),
            "grant_type": grant,
            "scope": self.client.scope,
        }

    async def _token(
        self, body: dict[str, Any], operation: str, subject: str | None
    ) -> AccessToken:
        async def call() -> CloudAnswer:
            return await self._http.request("POST", "/oauth/token", operation, json_body=body)

        answer = await self._pacer.send(call, lambda a: a.retry_after())
        if answer.status != 200:
            raise self._refusal(answer, operation, subject)
        data = answer.json()
        value = data.get("access_token") if isinstance(data, dict) else None
        kind = data.get("token_type", "bearer") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value or str(kind).lower() != "bearer":
            raise CloudRejected(f"Qlik Cloud answered {operation} without a bearer access_token")
        assert isinstance(data, dict)
        scope = data.get("scope")
        return AccessToken(
            value,
            _expiry(data, self._clock()),
            scope if isinstance(scope, str) else self.client.scope,
            subject,
        )

    def _refusal(self, answer: CloudAnswer, operation: str, subject: str | None) -> Exception:
        said = answer.qlik_said([self.client.client_secret.reveal()])
        error = answer.error()
        words = " ".join(error.values()).lower()
        client = self.client.client_id
        if answer.status >= 500:
            return QlikUnavailable(f"Qlik Cloud failed {operation}: {said}")
        if answer.status == 401:
            return CloudClientRejected(
                f"Qlik Cloud refused OAuth client {client!r} ({said}): check client_id and "
                "client_secret against Administration > OAuth in the tenant",
                status=401,
                code=error.get("code"),
            )
        if "unauthorized_client" in words or ("grant" in words and "invalid_grant" not in words):
            return CloudGrantNotAllowed(
                f"OAuth client {client!r} may not use this grant ({said}): in Administration > "
                "OAuth, make it a web (machine-to-machine) client and allow user impersonation "
                "(grant urn:qlik:oauth:user-impersonation) or client credentials",
                status=answer.status,
                code=error.get("code"),
            )
        if "scope" in words:
            return CloudGrantNotAllowed(
                f"OAuth client {client!r} may not ask for scope {self.client.scope!r} ({said}): "
                "add it to the client's allowed scopes, or ask for fewer scopes",
                status=answer.status,
                code=error.get("code"),
            )
        if subject is not None and (
            "invalid_grant" in words
            or ("user" in words and ("not found" in words or "exist" in words))
        ):
            return CloudUserNotFound(
                f"Qlik Cloud has no user with subject {subject!r} to impersonate ({said}): "
                "impersonation works only for existing users; create them first "
                "(provision_users=True with an admin_oauth client) or log them in once with JWT"
            )
        if answer.status == 403:
            return QlikAccessDenied(
                f"Qlik Cloud refused to issue a token for {subject!r} ({said}): the user is "
                "disabled or holds too many tokens; check the user in Administration > Users"
            )
        return CloudRejected(
            f"Qlik Cloud refused {operation} ({said})", status=answer.status, code=error.get("code")
        )
