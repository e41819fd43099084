"""`POST /oauth/token`: client credentials, user impersonation and token exchange; and
`POST /oauth/revoke`.

Request and answer shapes follow Qlik's OAuth API specification: JSON or form bodies, a token
set `{access_token, token_type: "bearer", expires_at, scope}` (plus RFC 6749's `expires_in`),
400 for invalid parameters, 401 for invalid client credentials, 403 when the user is disabled or
has too many tokens. Impersonation works only for users that already exist; the token carries the
client's scopes unless `scope` narrows them. The error codes below are RFC 6749's names, since
Qlik does not publish its own [inferred].

`/oauth/revoke` is what Qlik's OAuth API lists as "allows a client to revoke their token"; its
request and answers follow RFC 7009 [inferred: Qlik publishes the endpoint, not its rules]: a JSON
or form body `token`, `token_type_hint?`, `client_id`, `client_secret`; the client authenticates
first (401 `invalid_client`), then `token` is required (400 `invalid_request`); 200 with an empty
body whether or not the token was known (§2.2), and a token issued to another client is left
alone, also with 200 (§2.1). A revoked token is refused everywhere afterwards; tokens exchanged
from it (`purpose` websocket / webresource) keep their own short lifetime [inferred].
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

from .answers import QlikCloudError
from .state import AccessToken, CloudState
from .tenant import (
    GRANT_CLIENT_CREDENTIALS,
    GRANT_IMPERSONATION,
    GRANT_TOKEN_EXCHANGE,
    OAuthClient,
)

__all__ = ["TokenEndpoint"]

_LOOKUP_FIELDS = ("subject", "userId", "email")
_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def _bad(code: str, detail: str, status: int = 400) -> QlikCloudError:
    titles = {400: "Invalid request parameters", 401: "Unauthorized", 403: "Forbidden"}
    return QlikCloudError(status, code, titles[status], detail)


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _bad("invalid_request", f"{name} is required")
    return value


class TokenEndpoint:
    """The token endpoint of one tenant. `lifetime` is the access tokens' lifetime in seconds."""

    def __init__(
        self,
        state: CloudState,
        clients: dict[str, OAuthClient],
        *,
        lifetime: float,
        exchanged_lifetime: float,
        max_tokens_per_user: int | None,
    ) -> None:
        self.state = state
        self.clients = clients
        self.lifetime = lifetime
        self.exchanged_lifetime = exchanged_lifetime
        self.max_tokens_per_user = max_tokens_per_user

    def handle(self, body: dict[str, Any], record: Any) -> dict[str, Any]:
        """Answer one token request (raises `QlikCloudError` for every refusal)."""
        grant = _string(body, "grant_type")
        record.grant_type = grant
        client_id = _string(body, "client_id")
        record.client_id = client_id
        if grant == GRANT_TOKEN_EXCHANGE:
            return self._exchange(body, client_id, record)
        if grant not in (GRANT_CLIENT_CREDENTIALS, GRANT_IMPERSONATION):
            raise _bad("unsupported_grant_type", f"grant_type {grant} is not supported")
        client = self._authenticate(client_id, body.get("client_secret"))
        if grant not in client.grant_types:
            raise _bad("unauthorized_client", f"the OAuth client is not allowed the {grant} grant")
        scopes = self._scopes(client, body.get("scope"))
        if grant == GRANT_CLIENT_CREDENTIALS:
            return self._answer(self.state.issue(client.client_id, None, scopes, self.lifetime))
        user = self._impersonated_user(body.get("user_lookup"))
        record.user = user.subject
        if self.max_tokens_per_user is not None:
            live = [t for t in list(self.state.tokens) if self._live_for(t, user.id)]
            if len(live) >= self.max_tokens_per_user:
                raise _bad(
                    "access_denied", "the user has reached the maximum number of tokens", 403
                )
        return self._answer(self.state.issue(client.client_id, user, scopes, self.lifetime))

    def revoke(self, body: dict[str, Any], record: Any) -> None:
        """Answer one revocation request (raises `QlikCloudError` for a refusal)."""
        given = body.get("client_id")
        client_id = given if isinstance(given, str) else ""
        record.client_id = client_id or None
        client = self._authenticate(client_id, body.get("client_secret"))
        hint = body.get("token_type_hint")
        if hint is not None and not isinstance(hint, str):
            raise _bad("invalid_request", "token_type_hint must be a string")
        revoked = self.state.revoke(_string(body, "token"), client.client_id)
        if revoked is not None and revoked.user_id is not None:
            user = self.state.user_by_id(revoked.user_id)
            record.user = user.subject if user else None

    def _live_for(self, value: str, user_id: str) -> bool:
        token = self.state.token(value)
        return token is not None and token.user_id == user_id

    def _authenticate(self, client_id: str, secret: Any) -> OAuthClient:
        client = self.clients.get(client_id)
        given = secret if isinstance(secret, str) else ""
        expected = client.client_secret if client is not None else "\0"
        # Compare even for an unknown client, so timing does not tell which client ids exist.
        if not hmac.compare_digest(given.encode(), expected.encode()) or client is None:
            raise _bad("invalid_client", "invalid client credentials", 401)
        return client

    @staticmethod
    def _scopes(client: OAuthClient, requested: Any) -> tuple[str, ...]:
        if requested is None or requested == "":
            return client.scopes  # impersonation tokens inherit the client's scopes
        if not isinstance(requested, str):
            raise _bad("invalid_request", "scope must be a space-delimited string")
        wanted = tuple(dict.fromkeys(requested.split()))
        outside = [s for s in wanted if s not in client.scopes]
        if outside:
            raise _bad("invalid_scope", f"scope not allowed for this client: {' '.join(outside)}")
        return wanted

    def _impersonated_user(self, lookup: Any) -> Any:
        if not isinstance(lookup, dict):
            raise _bad("invalid_request", "user_lookup is required")
        field_name, value = lookup.get("field"), lookup.get("value")
        if field_name not in _LOOKUP_FIELDS:
            raise _bad("invalid_request", "user_lookup.field must be subject, userId or email")
        if not isinstance(value, str) or not value:
            raise _bad("invalid_request", "user_lookup.value is required")
        user = self.state.find_user(field_name, value)
        if user is None or user.status == "deleted":
            raise _bad("invalid_grant", "user not found in the tenant")
        if user.status == "disabled":
            raise _bad("access_denied", "the user is disabled", 403)
        return user

    def _exchange(self, body: dict[str, Any], client_id: str, record: Any) -> dict[str, Any]:
        purpose = body.get("purpose")
        if purpose not in ("websocket", "webresource"):
            raise _bad("invalid_request", "purpose must be websocket or webresource")
        if body.get("subject_token_type") != _ACCESS_TOKEN_TYPE:
            raise _bad("invalid_request", f"subject_token_type must be {_ACCESS_TOKEN_TYPE}")
        subject = self.state.token(_string(body, "subject_token"))
        if subject is None or subject.user_id is None:
            raise _bad("invalid_grant", "subject_token is not a live user access token", 401)
        user = self.state.user_by_id(subject.user_id)
        record.user = user.subject if user else None
        lifetime = min(self.exchanged_lifetime, subject.expires_at - self.state.clock())
        token = self.state.issue(subject.client_id, user, subject.scopes, lifetime, purpose)
        answer = self._answer(token)
        answer["issued_token_type"] = _ACCESS_TOKEN_TYPE
        return answer

    def _answer(self, token: AccessToken) -> dict[str, Any]:
        remaining = token.expires_at - self.state.clock()
        expires_at = dt.datetime.fromtimestamp(token.expires_at, dt.UTC)
        return {
            "access_token": token.value,
            "token_type": "bearer",
            "expires_in": round(remaining),
            "expires_at": expires_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "scope": " ".join(token.scopes),
        }
