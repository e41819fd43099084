"""A simulated Qlik Cloud tenant for tests: JWT login, OAuth impersonation, users, engine WebSocket.

`async with CloudSimulator(...) as tenant:` serves one tenant over real TLS on loopback
(`tenant.tenant_url`, trusted through `tenant.ca_file`), following Qlik's published API
specifications and guides (docs/qlik-cloud.md lists them and marks what is inferred):

- `POST /login/jwt-session`: every documented JWT rule (key id, RS algorithm, signature, iss, aud,
  the required claims, subType, exp - nbf <= 1 h, nbf/exp, no jti reuse) -> cookie session;
- `POST /oauth/token`: client credentials, user impersonation (`user_lookup` by subject, userId
  or email), token exchange; unknown client, grant not allowed, bad scope, unknown/disabled user;
- `POST /oauth/revoke`: a client revokes its own tokens (RFC 7009's rules);
- `GET /api/v1/users/me`, `/api/v1/users` (look up, provision), `/api/v1/csrf-token`;
- web integrations (allowed origins), per-tier rate limits with 429 + `Retry-After`;
- the engine WebSocket at `/app/<appId>`, with the Qlik Sense simulator's engine model.

It imports no JWT library (signatures are checked with `cryptography`), so it tests clients that
sign with one. Time is injectable (`clock=ManualClock(time.time())`). Hazard: test
infrastructure with test credentials; it binds loopback by default.
"""

from __future__ import annotations

from .keys import SigningKeyPair, new_signing_key
from .server import CloudSimulator
from .state import CloudRequest
from .tenant import (
    GRANT_CLIENT_CREDENTIALS,
    GRANT_IMPERSONATION,
    JWT_AUDIENCE,
    CloudUser,
    JwtIdentityProvider,
    OAuthClient,
    TierLimit,
    WebIntegration,
)

__all__ = [
    "GRANT_CLIENT_CREDENTIALS",
    "GRANT_IMPERSONATION",
    "JWT_AUDIENCE",
    "CloudRequest",
    "CloudSimulator",
    "CloudUser",
    "JwtIdentityProvider",
    "OAuthClient",
    "SigningKeyPair",
    "TierLimit",
    "WebIntegration",
    "new_signing_key",
]
