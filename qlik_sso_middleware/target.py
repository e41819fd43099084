"""`QlikTarget`: one Qlik virtual proxy the middleware serves, validated once at construction."""

from __future__ import annotations

import importlib.util
import logging
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .auth.base import AuthStrategy
from .auth.header import HeaderAuth
from .errors import ConfigurationError
from .proxy.engine import Timeouts

__all__ = ["DEFAULT_BLOCKED", "QlikTarget", "Timeouts"]

#: Admin and developer surfaces no embedded user needs: the repository API (full admin power when
#: reached with a session), the management console and the dev hub.
DEFAULT_BLOCKED = ("qrs/", "qmc/", "dev-hub/")

#: Values of `QlikTarget.http_engine`.
HTTP_ENGINES = ("auto", "reqwest", "aiohttp")

#: What to install for the reqwest engine (pyreqwest is an optional dependency).
FAST_EXTRA = "pip install 'qlik-sso-middleware[fast]'"


def reqwest_installed() -> bool:
    """True when pyreqwest (the `[fast]` extra) can be imported."""
    return importlib.util.find_spec("pyreqwest") is not None


_PREFIX = re.compile(r"^[a-z0-9\-._~]+(/[a-z0-9\-._~]+)*$")
logger = logging.getLogger("qlik_sso_middleware")


def qmc_prefix(prefix: str) -> str:
    """`prefix` as the QMC stores it: lowercase (Qlik Sense 3.0 and later lowercase a prefix typed
    with capitals, so `A_` in the QMC is the virtual proxy `a_`)."""
    return prefix.lower()


@dataclass(frozen=True, slots=True)
class QlikTarget:
    """A Qlik proxy + virtual proxy, and how to get sessions from it.

    - `url`: the proxy port's base URL, scheme + host [+ port], no path (`https://qlik.acme.com`).
    - `prefix`: the virtual proxy prefix, no slashes (`"sso"`; `""` = the default VP). Capitals are
      lowered as the QMC does since Qlik Sense 3.0 (`"A_"` is the VP `a_`), with a warning.
    - `cookie_name`: the VP's "Session cookie header name" (default `X-Qlik-Session-<prefix>`);
      Qlik appends `-HTTP` over plain http, which the middleware knows.
    - `mount_path`: where the app serves it (default `/<prefix>/`, so Qlik's absolute URLs work
      without rewriting any body).
    - `session_ttl`: sliding cache lifetime, a margin under the VP's inactivity timeout (30 min).
    - `host_header`: the `Host` Qlik must see; `None` preserves the browser's (Qlik's advice).
    - `verify`: TLS verification of the proxy port (True, a CA file path, or an SSLContext).
    - `http_engine`: the library proxied requests go through: `"reqwest"` (pyreqwest, the `[fast]`
      extra: less CPU per request), `"aiohttp"`, or `"auto"` (reqwest when pyreqwest is installed,
      unless `verify` is an SSLContext, which only aiohttp can use, or Qlik's certificate names
      its host only in the CN, which only aiohttp can verify: `proxy/engine_choice.py`). Logins
      and Qlik API calls always use httpx on aiohttp.
    """

    url: str
    prefix: str = "sso"
    auth: AuthStrategy = field(default_factory=HeaderAuth)
    cookie_name: str | None = None
    mount_path: str | None = None
    name: str | None = None
    session_ttl: float = 25 * 60.0
    host_header: str | None = None
    verify: bool | str | ssl.SSLContext = True
    timeouts: Timeouts = field(default_factory=Timeouts)
    blocked_paths: Sequence[str] = DEFAULT_BLOCKED
    allowed_paths: Sequence[str] = ()
    max_connections: int = 100
    http_engine: str = "auto"

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"{self.url!r} must be http(s)://host[:port] of the Qlik proxy", field="url"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigurationError(
                "must not contain a path: give the virtual proxy as `prefix`", field="url"
            )
        object.__setattr__(self, "url", f"{parts.scheme}://{parts.netloc}")
        if isinstance(self.prefix, str) and qmc_prefix(self.prefix) != self.prefix:
            logger.warning(
                "virtual proxy prefix %r is used as %r: the QMC lowercases prefixes (Qlik Sense "
                "3.0 and later)",
                self.prefix,
                qmc_prefix(self.prefix),
            )
            object.__setattr__(self, "prefix", qmc_prefix(self.prefix))
        if self.prefix and not _PREFIX.match(self.prefix):
            raise ConfigurationError(
                f"{self.prefix!r}: Qlik prefixes are lowercase a-z 0-9 - . _ ~ without leading "
                "or trailing '/'",
                field="prefix",
            )
        if self.cookie_name is None:
            default = f"X-Qlik-Session-{self.prefix}" if self.prefix else "X-Qlik-Session"
            object.__setattr__(self, "cookie_name", default)
        elif not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", self.cookie_name):
            raise ConfigurationError("is not a valid cookie name", field="cookie_name")
        mount = self.mount_path or (f"/{self.prefix}/" if self.prefix else "/")
        if not (mount.startswith("/") and mount.endswith("/")):
            raise ConfigurationError("must start and end with '/'", field="mount_path")
        object.__setattr__(self, "mount_path", mount)
        if self.name is None:
            object.__setattr__(self, "name", self.prefix or "default")
        if self.session_ttl <= 0:
            raise ConfigurationError("must be positive", field="session_ttl")
        if self.max_connections < 1:
            raise ConfigurationError("must be at least 1", field="max_connections")
        if self.http_engine not in HTTP_ENGINES:
            raise ConfigurationError(
                f"{self.http_engine!r} is not one of {', '.join(HTTP_ENGINES)}", field="http_engine"
            )
        if self.http_engine == "reqwest" and not reqwest_installed():
            raise ConfigurationError(
                f"the reqwest engine needs pyreqwest: {FAST_EXTRA}, or set http_engine='auto'",
                field="http_engine",
            )
        if self.http_engine == "reqwest" and isinstance(self.verify, ssl.SSLContext):
            raise ConfigurationError(
                "an ssl.SSLContext can only be used by the aiohttp engine: give a CA file path, or "
                "set http_engine='aiohttp' (or 'auto')",
                field="http_engine",
            )
        if not isinstance(self.auth, AuthStrategy):
            members = {*AuthStrategy.__annotations__, *vars(AuthStrategy)}
            missing = sorted(
                m for m in members if not m.startswith("_") and not hasattr(self.auth, m)
            )
            raise ConfigurationError(
                f"must implement the AuthStrategy protocol (missing: {', '.join(missing)})",
                field="auth",
            )

    @property
    def resolved_http_engine(self) -> str:
        """The engine `auto` stands for with this `verify` and the installed packages (before
        Qlik's certificate is seen: `proxy/engine_choice.py` may still pick aiohttp)."""
        if self.http_engine != "auto":
            return self.http_engine
        if isinstance(self.verify, ssl.SSLContext) or not reqwest_installed():
            return "aiohttp"
        return "reqwest"

    @property
    def upstream_base_path(self) -> str:
        return f"/{self.prefix}/" if self.prefix else "/"

    @property
    def key(self) -> str:
        """Identifies this Qlik server + virtual proxy in session keys."""
        return f"{self.url}|{self.prefix}"

    @property
    def is_https(self) -> bool:
        return self.url.startswith("https://")
