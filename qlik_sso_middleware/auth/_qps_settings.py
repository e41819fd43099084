"""`QPSSettings`: where the QPS API of a virtual proxy is and which certificate opens it.

Everything that can be checked without touching a file or the network is checked here, on
construction, with `ConfigurationError` naming the field; the certificate files are checked when
the `QPSClient` is built.
"""

from __future__ import annotations

import ipaddress
import string
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

from ..errors import ConfigurationError

__all__ = ["QPS_API_PORT", "QPSSettings", "is_loopback_host"]

#: QPS's REST API port; used when `api_url` names none.
QPS_API_PORT = 4243
_PREFIX_CHARS = frozenset(string.ascii_lowercase + string.digits + "-._~")


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address: the only hosts TLS verification may be skipped for."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class QPSSettings:
    """How to reach the QPS API of one virtual proxy, validated on construction.

    - `api_url`: `https://host[:port]` of the QPS API; the port defaults to 4243 (QPS's API port,
      not 443). Only the origin: the path is built from `prefix` (`/qps/<prefix>/`).
    - `prefix`: the virtual proxy prefix (no slashes; "" for the default VP); lowered as the QMC
      lowers it (Qlik Sense 3.0 and later).
    - `root`: the site's `root.pem`, the only CA trusted for the server certificate.
    - `client_cert` + `client_key` (+ `client_key_password`), or `pfx` (+ `pfx_password`).
    - `server_name`: the name to verify in the QPS certificate when it differs from the URL host
      (Qlik's certificate often names the short host name); it is also sent as SNI.
    - `verify=False` turns server verification off; refused unless the host is loopback or
      `force_insecure=True`, and logged at WARNING. Never do this in production.
    - `timeout`: seconds for connect, read and write of each call.
    """

    api_url: str
    root: str | Path | None
    prefix: str = ""
    client_cert: str | Path | None = None
    client_key: str | Path | None = None
    client_key_password: str | None = field(default=None, repr=False)
    pfx: str | Path | None = None
    pfx_password: str | None = field(default=None, repr=False)
    server_name: str | None = None
    verify: bool = True
    force_insecure: bool = False
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self._parsed_url()
        if isinstance(self.prefix, str):
            object.__setattr__(self, "prefix", self.prefix.lower())
        if not isinstance(self.prefix, str) or any(c not in _PREFIX_CHARS for c in self.prefix):
            raise ConfigurationError(
                "the virtual proxy prefix is lowercase a-z 0-9 - . _ ~ without slashes",
                field="prefix",
            )
        if self.server_name is not None and (
            not isinstance(self.server_name, str)
            or not self.server_name
            or any(c in self.server_name for c in "/:@ \t\r\n")
        ):
            raise ConfigurationError("a host name without scheme or port", field="server_name")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float):
            raise ConfigurationError("a number of seconds", field="timeout")
        if not 0 < self.timeout <= 300:
            raise ConfigurationError("must be between 0 and 300 seconds", field="timeout")
        if self.verify and self.root is None:
            raise ConfigurationError(
                "root.pem is required to verify QPS's certificate", field="root"
            )
        if not self.verify and not self.force_insecure and not self._is_loopback():
            raise ConfigurationError(
                "turning TLS verification off is refused for a non-loopback QPS host; give root "
                "(and server_name) instead, or set force_insecure=True if you really must",
                field="verify",
            )

    def _parsed_url(self) -> httpx.URL:
        try:
            url = httpx.URL(self.api_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ConfigurationError("not a URL", field="api_url") from exc
        if url.scheme != "https":
            raise ConfigurationError(
                "the QPS API is served over https only (https://host:4243)", field="api_url"
            )
        if not url.host:
            raise ConfigurationError("has no host", field="api_url")
        if url.path not in ("", "/") or url.query or url.fragment:
            raise ConfigurationError(
                "give the origin only (https://host:4243); the virtual proxy goes in prefix",
                field="api_url",
            )
        return url

    def _is_loopback(self) -> bool:
        return is_loopback_host(self._parsed_url().host)

    @property
    def host(self) -> str:
        return self._parsed_url().host

    @property
    def port(self) -> int:
        return self._parsed_url().port or QPS_API_PORT

    @property
    def base_url(self) -> str:
        """`https://host:port/qps/<prefix>/` (IPv6 hosts bracketed)."""
        host = self.host
        shown = f"[{host}]" if ":" in host else host
        path = f"/qps/{self.prefix}/" if self.prefix else "/qps/"
        return f"https://{shown}:{self.port}{path}"
