"""The one error hierarchy of qlik-sso-middleware.

Every error knows the HTTP status and the WebSocket close code the middleware answers with, so HTTP
and WebSocket paths cannot drift apart. Messages name the bad field or the Qlik-side cause and never
contain a cookie, ticket, key or password.

    QlikSSOError
    ├── ConfigurationError          bad option or file, raised at construction / start-up
    │   └── CertificateError        client/root certificate unusable (missing, wrong password, expired…)
    ├── NotAuthenticated            no logged-in app user                       401 / 1008
    ├── InvalidIdentity             app user cannot be a Qlik identity          403 / 1008
    ├── RequestRefused              hostile or disallowed request               400|403 / 1008
    ├── QlikError                   Qlik did not do what we asked
    │   ├── QlikRejected            Qlik answered, but not with a session       502 / 1011
    │   │   ├── QlikAccessDenied    no access pass / too many parallel sessions 403 / 1008
    │   │   │   └── CloudUserNotFound   Qlik Cloud has no such user to impersonate
    │   │   └── CloudRejected       Qlik Cloud refused our credentials/setup    503 / 1013
    │   │       ├── CloudJwtRejected        /login/jwt-session refused the JWT
    │   │       ├── CloudClientRejected     OAuth client id/secret not accepted
    │   │       └── CloudGrantNotAllowed    client lacks the grant or the scope
    │   ├── CloudRateLimited        Qlik Cloud's 429 outlasted our wait         503 / 1013
    │   ├── QlikUnavailable         connection refused, reset, TLS failure      502 / 1011
    │   ├── QlikTimeout             Qlik too slow                               504 / 1011
    │   └── QPSError                the QPS REST API refused a call             502 / 1011
    │       ├── XrfkeyRejected      403 "XSRF prevention check failed"
    │       └── ClientCertificateRejected   TLS handshake failed on port 4243
    ├── StoreUnavailable            session store (e.g. Redis) unreachable      503 / 1013
    └── TooManyLogins               every login slot busy for login_wait        503 / 1013
"""

from __future__ import annotations

__all__ = [
    "CertificateError",
    "ClientCertificateRejected",
    "CloudClientRejected",
    "CloudGrantNotAllowed",
    "CloudJwtRejected",
    "CloudRateLimited",
    "CloudRejected",
    "CloudUserNotFound",
    "ConfigurationError",
    "InvalidIdentity",
    "NotAuthenticated",
    "QPSError",
    "QlikAccessDenied",
    "QlikError",
    "QlikRejected",
    "QlikSSOError",
    "QlikTimeout",
    "QlikUnavailable",
    "RequestRefused",
    "StoreUnavailable",
    "TooManyLogins",
    "XrfkeyRejected",
    "private_close_code",
]


class QlikSSOError(Exception):
    """Base of every error this library raises on purpose."""

    status_code: int = 500
    ws_close_code: int = 1011
    #: Short text that is safe to show to the browser (no internals).
    public_message: str = "Internal error"

    def __init__(self, message: str, *, public_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if public_message is not None:
            self.public_message = public_message


class ConfigurationError(QlikSSOError, ValueError):
    """An option, file or environment variable is invalid. Raised before serving anything."""

    public_message = "Qlik SSO is misconfigured"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class CertificateError(ConfigurationError):
    """A certificate or key file cannot be used (missing, wrong password, mismatch, expired…)."""


class NotAuthenticated(QlikSSOError):
    """The request carries no logged-in application user."""

    status_code = 401
    ws_close_code = 1008
    public_message = "Not logged in"


class InvalidIdentity(QlikSSOError):
    """The application user cannot be expressed as a safe Qlik identity."""

    status_code = 403
    ws_close_code = 1008
    public_message = "This user cannot be signed in to Qlik"


class RequestRefused(QlikSSOError):
    """The browser's request is hostile or not allowed (path tricks, admin surfaces, cross-site)."""

    ws_close_code = 1008

    def __init__(self, message: str, *, status_code: int = 400) -> None:
        super().__init__(message, public_message=message)
        self.status_code = status_code


class QlikError(QlikSSOError):
    """Qlik Sense did not do what was asked."""

    status_code = 502
    ws_close_code = 1011
    public_message = "Qlik Sense is not available"


class QlikRejected(QlikError):
    """Qlik answered, but did not give the session we asked for (usually a virtual proxy setting)."""


class QlikAccessDenied(QlikRejected):
    """Qlik refused the user: no access pass, or too many sessions in parallel."""

    status_code = 403
    ws_close_code = 1008
    public_message = "Qlik Sense refused access for this user"


class QlikUnavailable(QlikError):
    """Qlik could not be reached (connection refused or reset, TLS failure)."""


class QlikTimeout(QlikError):
    """Qlik did not answer in time."""

    status_code = 504
    public_message = "Qlik Sense did not answer in time"


class QPSError(QlikError):
    """The QPS REST API (port 4243) refused or failed a call."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class XrfkeyRejected(QPSError):
    """QPS answered 403 "XSRF prevention check failed": the xrfkey query and header differ or lack."""


class ClientCertificateRejected(QPSError):
    """The TLS handshake with QPS failed: the client certificate was not accepted by QPS."""


class StoreUnavailable(QlikSSOError):
    """The session store cannot be reached; never silently fall back to per-process sessions."""

    status_code = 503
    ws_close_code = 1013
    public_message = "Session store unavailable, try again shortly"


class TooManyLogins(QlikSSOError):
    """Every login slot (`max_concurrent_logins`) stayed busy for `login_wait` seconds.

    A flood of first requests for users without a Qlik session waits here instead of taking every
    pooled connection to Qlik from users who already have one.
    """

    status_code = 503
    ws_close_code = 1013
    public_message = "Too many sign-ins in progress, try again shortly"


class CloudRejected(QlikRejected):
    """Qlik Cloud refused a call because of how the tenant or this library is set up.

    The message names the setting to fix; the browser gets a 503 (nothing it can do).
    """

    status_code = 503
    ws_close_code = 1013
    public_message = "Qlik Cloud sign-in is not available"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        said: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        #: What Qlik said (code, title, detail), scrubbed of credentials, for telling causes apart.
        self.said = said


class CloudJwtRejected(CloudRejected):
    """`/login/jwt-session` refused the JWT (key id, issuer, key, claims or clock)."""


class CloudClientRejected(CloudRejected):
    """The OAuth client id or secret was not accepted by `/oauth/token`."""


class CloudGrantNotAllowed(CloudRejected):
    """The OAuth client is not allowed the grant type (user impersonation) or a scope it asked for."""


class CloudUserNotFound(QlikAccessDenied):
    """Qlik Cloud has no user with this subject: impersonation works only for existing users."""

    public_message = "This user has no Qlik Cloud account"


class CloudRateLimited(QlikError):
    """Qlik Cloud answered 429 (or our own queue would wait past its limit); `retry_after` seconds."""

    status_code = 503
    ws_close_code = 1013
    public_message = "Qlik Cloud is busy, try again shortly"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def private_close_code(code: int) -> int:
    """The application-range twin of a protocol close code: 1001-1015 → 4001-4015 (4000 + code −
    1000), for servers that let an application close only with 1000 or 3000-4999 (daphne:
    README, "ASGI servers"). Other codes are returned as they are."""
    return code + 3000 if 1000 < code < 2000 else code
