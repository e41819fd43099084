"""Qlik Cloud as a target: sign the app's users into a tenant by OAuth impersonation or JWT login.

    CloudTarget           the tenant and its credentials, validated at construction
    CloudIdentity         a Cloud user (subject, name, email, groups); CloudIdentityMapping
                          makes one from a resolver's QlikIdentity
    QlikCloudClient       access_token() / login() / csrf_token() for one tenant
      OAuthTokenClient    /oauth/token: impersonation, client credentials
      UserProvisioner     /api/v1/users: create users on first sight
      JwtSessionClient    /login/jwt-session, /api/v1/csrf-token
      LoginJwtSigner      the login JWT, claims exactly as Qlik documents them
      RequestPacer        the rate-limit queue (never a burst of 429s, honours Retry-After)

Errors (errors.py): `CloudJwtRejected`, `CloudClientRejected`, `CloudGrantNotAllowed`,
`CloudUserNotFound`, `CloudRateLimited`, under `CloudRejected` / `QlikError`. Nothing here logs
or raises with a token, a secret or a key. `LoginJwtSigner` needs pyjwt
(`pip install 'qlik-sso-middleware[cloud]'`); importing this package does not. See
docs/qlik-cloud.md for Qlik's rules and the evidence behind them.
"""

from __future__ import annotations

from ..errors import (
    CloudClientRejected,
    CloudGrantNotAllowed,
    CloudJwtRejected,
    CloudRateLimited,
    CloudRejected,
    CloudUserNotFound,
)
from ..secret import Secret
from .client import QlikCloudClient
from .identity import CloudIdentity, CloudIdentityMapping
from .jwt_session import CloudCookieSession, JwtSessionClient
from .login_jwt import JWT_AUDIENCE, LoginJwtSigner
from .oauth import AccessToken, OAuthTokenClient
from .pacer import RequestPacer
from .settings import JwtSigningSettings, OAuthClientSettings, RateLimit
from .target import CloudTarget
from .users import CloudUserRecord, UserProvisioner

__all__ = [
    "JWT_AUDIENCE",
    "AccessToken",
    "CloudClientRejected",
    "CloudCookieSession",
    "CloudGrantNotAllowed",
    "CloudIdentity",
    "CloudIdentityMapping",
    "CloudJwtRejected",
    "CloudRateLimited",
    "CloudRejected",
    "CloudTarget",
    "CloudUserNotFound",
    "CloudUserRecord",
    "JwtSessionClient",
    "JwtSigningSettings",
    "LoginJwtSigner",
    "OAuthClientSettings",
    "OAuthTokenClient",
    "QlikCloudClient",
    "RateLimit",
    "RequestPacer",
    "Secret",
    "UserProvisioner",
]
