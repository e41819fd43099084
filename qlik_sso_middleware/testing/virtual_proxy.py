"""Virtual proxy settings of the simulated Qlik Proxy Service, validated as the QMC does.

A `VirtualProxy` is immutable; every option is checked at construction and a bad one raises
`ConfigurationError` (a `ValueError`) naming the field, never at request time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import ConfigurationError

__all__ = ["VirtualProxy"]

_PREFIX = re.compile(r"[a-z0-9\-._~]+")
_HEADER_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# QPS refuses header names that would collide with its own internal headers.
_RESERVED_HEADER_PARTS = (
    "x-qlik-security",
    "x-qlik-user",
    "x-qlik-proxysession",
    "x-qlik-proxyid",
    "x-qlik-trace",
    "x-qlik-app",
    "x-qlik-capabilities",
)
#: Longer identity header values are treated as carrying no identity.
MAX_IDENTITY_LENGTH = 512
_AUTH_METHODS = ("ticket", "header_static", "header_dynamic")
_ANONYMOUS = ("none", "allow", "always")
_SAMESITE = (None, "None", "Lax", "Strict")


def literal_pattern(pattern: str) -> str:
    """The dynamic pattern as header text: the QMC stores the backslash escaped (`$ud\\\\$id` is
    one backslash); an unescaped `$ud\\$id` means the same. (The simulator keeps its own copy of
    this rule: it models Qlik, and imports nothing of the middleware's.)"""
    return pattern.replace("\\\\", "\\")


@dataclass(frozen=True)
class VirtualProxy:
    """One virtual proxy: prefix, cookie, authentication method and security flags.

    As the QMC stores them: `prefix` is lowered (`A_` is the VP `a_`, Qlik Sense 3.0 and later);
    `dynamic_pattern` is written as the QMC shows it, `$ud\\\\$id` (the backslash escaped, accepting
    `ACME\\alice`), or unescaped `$ud\\$id` (same meaning). `linked=False` is a VP not linked to
    this proxy service (answered 400 like an unknown prefix); `windows_auth_pattern` picks Windows
    authentication (a User-Agent containing it) or the form login for users without a session;
    `load_balancing_nodes` empty means no engine serves the VP (`OnNoEngineAvailable`).
    Durations are seconds of the simulator's clock.
    """

    prefix: str = "sso"
    cookie_name: str | None = None
    auth: str = "header_dynamic"
    header_name: str = "hdr-usr"
    static_user_directory: str | None = None
    dynamic_pattern: str = "$ud\\\\$id"
    anonymous: str = "none"
    session_timeout: float = 1800.0
    host_allow_list: Sequence[str] = ()
    cookie_domain: str | None = None
    secure_https: bool = True
    secure_http: bool = False
    samesite_https: str | None = None
    samesite_http: str | None = None
    additional_response_headers: Sequence[tuple[str, str]] = ()
    extended_ws_csrf: bool = True
    auth_module_redirect_uri: str | None = None
    max_parallel_sessions: int = 5
    cooldown: float = 300.0
    linked: bool = True
    windows_auth_pattern: str = "Windows"
    load_balancing_nodes: Sequence[str] = ("Central",)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.prefix, str):
            object.__setattr__(self, "prefix", self.prefix.lower())  # as the QMC saves it
        if self.prefix and not _PREFIX.fullmatch(self.prefix):
            raise ConfigurationError(
                "must be lowercase a-z 0-9 - . _ ~ without slashes", field="prefix"
            )
        if self.auth not in _AUTH_METHODS:
            raise ConfigurationError(f"must be one of {_AUTH_METHODS}", field="auth")
        if self.anonymous not in _ANONYMOUS:
            raise ConfigurationError(f"must be one of {_ANONYMOUS}", field="anonymous")
        if not self.header_name.isascii() or not _HEADER_TOKEN.fullmatch(self.header_name):
            raise ConfigurationError("must be an ASCII HTTP header name", field="header_name")
        lowered = self.header_name.lower()
        if any(part in lowered for part in _RESERVED_HEADER_PARTS):
            raise ConfigurationError("is reserved by Qlik (X-Qlik-*)", field="header_name")
        if self.auth == "header_static" and not self.static_user_directory:
            raise ConfigurationError(
                "is required for auth='header_static'", field="static_user_directory"
            )
        literal = literal_pattern(self.dynamic_pattern)
        if literal.count("$ud") != 1 or literal.count("$id") != 1:
            raise ConfigurationError("must contain $ud and $id once", field="dynamic_pattern")
        for name in ("samesite_https", "samesite_http"):
            if getattr(self, name) not in _SAMESITE:
                raise ConfigurationError(f"must be one of {_SAMESITE}", field=name)
        if not isinstance(self.windows_auth_pattern, str):
            raise ConfigurationError("must be a string", field="windows_auth_pattern")
        if self.cookie_name is not None and not _HEADER_TOKEN.fullmatch(self.cookie_name):
            raise ConfigurationError("must be a cookie-name token", field="cookie_name")
        if self.session_timeout <= 0:
            raise ConfigurationError("must be > 0", field="session_timeout")
        if self.max_parallel_sessions < 1:
            raise ConfigurationError("must be >= 1", field="max_parallel_sessions")
        if self.cooldown < 0:
            raise ConfigurationError("must be >= 0", field="cooldown")
        for host in self.host_allow_list:
            if not host or "/" in host or ":" in host.strip("[]"):
                raise ConfigurationError("holds host names only", field="host_allow_list")
        for name, value in self.additional_response_headers:
            if not _HEADER_TOKEN.fullmatch(name) or not value.isascii() or "\n" in value:
                raise ConfigurationError(
                    "must be ASCII (name, value) pairs", field="additional_response_headers"
                )
        object.__setattr__(self, "host_allow_list", tuple(h.lower() for h in self.host_allow_list))
        object.__setattr__(
            self, "additional_response_headers", tuple(self.additional_response_headers)
        )
        object.__setattr__(self, "load_balancing_nodes", tuple(self.load_balancing_nodes))
        # "$ud\$id" -> (?P<ud>[^\\]+)\\(?P<id>[^\\]+): each part is everything but the separator.
        pattern = re.escape(literal)
        pattern = pattern.replace(re.escape("$ud"), r"(?P<ud>[^\\]+)", 1)
        pattern = pattern.replace(re.escape("$id"), r"(?P<id>[^\\]+)", 1)
        object.__setattr__(self, "_pattern", re.compile(pattern))

    @property
    def base_cookie_name(self) -> str:
        """The configured cookie name (without the `-HTTP` suffix used on plain http)."""
        if self.cookie_name is not None:
            return self.cookie_name
        return f"X-Qlik-Session-{self.prefix}" if self.prefix else "X-Qlik-Session"

    def session_cookie_name(self, https: bool) -> str:
        """The cookie name QPS sets: the configured one, plus `-HTTP` over plain http."""
        return self.base_cookie_name if https else f"{self.base_cookie_name}-HTTP"

    def set_cookie(self, value: str, https: bool) -> str:
        """The exact `Set-Cookie` value QPS sends for a new session (no Expires / Max-Age)."""
        parts = [f"{self.session_cookie_name(https)}={value}", "Path=/", "HttpOnly"]
        if self.secure_https if https else self.secure_http:
            parts.append("Secure")
        samesite = self.samesite_https if https else self.samesite_http
        if samesite is not None:
            parts.append(f"SameSite={samesite}")
        if self.cookie_domain:
            parts.append(f"Domain={self.cookie_domain}")
        return "; ".join(parts)

    def parse_identity(self, value: str) -> tuple[str, str] | None:
        """(user directory, user id) from an identity header value, or None when it carries none."""
        if not value.isascii():
            return None
        value = value.strip()
        if not value or len(value) > MAX_IDENTITY_LENGTH:
            return None
        if self.auth == "header_static":
            if "\\" in value or "," in value:
                return None
            assert self.static_user_directory is not None
            return self.static_user_directory, value
        if self.auth == "header_dynamic":
            if value.count("\\") != literal_pattern(self.dynamic_pattern).count("\\"):
                return None
            match = self._pattern.fullmatch(value)
            if match is None or "," in value:
                return None
            return match["ud"].strip(), match["id"].strip()
        return None
