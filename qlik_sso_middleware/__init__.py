"""qlik-sso-middleware: embed Qlik Sense in any Python web app for its own logged-in users.

Identity → one cached Qlik session per user → a safe same-origin HTTP + WebSocket proxy of the
virtual proxy prefix. See README.md for the flow and the security model.
"""

from .auth._qps import QPSClient
from .auth._qps_settings import QPSSettings
from .auth.base import AuthStrategy, LoginContext
from .auth.header import HeaderAuth
from .auth.session_api import SessionApiAuth
from .auth.ticket import TicketAuth
from .core import QlikSSO
from .errors import (
    CertificateError,
    ClientCertificateRejected,
    ConfigurationError,
    InvalidIdentity,
    NotAuthenticated,
    QlikAccessDenied,
    QlikError,
    QlikRejected,
    QlikSSOError,
    QlikTimeout,
    QlikUnavailable,
    QPSError,
    RequestRefused,
    StoreUnavailable,
    XrfkeyRejected,
)
from .identity import QlikIdentity
from .middleware import QlikSSOMiddleware
from .offload.front import FrontProxy
from .resolvers.base import (
    CallableResolver,
    ChainResolver,
    Resolved,
    Resolver,
    ScopeUserResolver,
)
from .resolvers.headers import TrustedHeaderResolver
from .resolvers.tenants import Tenant, TenantResolver
from .stores.base import QlikSession, SessionStore
from .stores.memory import MemorySessionStore
from .target import QlikTarget, Timeouts

__version__ = "0.1.0"

__all__ = [
    "AuthStrategy",
    "CallableResolver",
    "CertificateError",
    "ChainResolver",
    "ClientCertificateRejected",
    "ConfigurationError",
    "FrontProxy",
    "HeaderAuth",
    "InvalidIdentity",
    "LoginContext",
    "MemorySessionStore",
    "NotAuthenticated",
    "QPSClient",
    "QPSError",
    "QPSSettings",
    "QlikAccessDenied",
    "QlikError",
    "QlikIdentity",
    "QlikRejected",
    "QlikSSO",
    "QlikSSOError",
    "QlikSSOMiddleware",
    "QlikSession",
    "QlikTarget",
    "QlikTimeout",
    "QlikUnavailable",
    "RequestRefused",
    "Resolved",
    "Resolver",
    "ScopeUserResolver",
    "SessionApiAuth",
    "SessionStore",
    "StoreUnavailable",
    "Tenant",
    "TenantResolver",
    "TicketAuth",
    "Timeouts",
    "TrustedHeaderResolver",
    "XrfkeyRejected",
]
