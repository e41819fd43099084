"""`qlik-sso front-config`: the nginx or Caddy configuration of offload mode, from the app's own
configuration file, so the two cannot disagree on the prefix, the secret or where Qlik is.

`plan_from_config` checks and gathers what both servers need (`FrontPlan`); `nginx.render` and
`caddy.render` write it out. Errors are `ConfigurationError`s naming the file line and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config.schema import QlikSSOConfig
from ..errors import ConfigurationError
from ..target import QlikTarget
from .front import FrontProxy

__all__ = ["BROWSER_HEADERS", "SERVERS", "FrontPlan", "plan_from_config", "render"]

#: The only browser request headers the front proxy passes on to Qlik. Everything else (cookies,
#: `Authorization`, `Forwarded`, `X-Forwarded-*`, any `X-Qlik-*`, the identity header in any
#: spelling, `qlik-csrf-token`) is never sent: an allow-list cannot miss a spelling.
BROWSER_HEADERS = (
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Cache-Control",
    "Content-Type",
    "If-Match",
    "If-Modified-Since",
    "If-None-Match",
    "If-Range",
    "If-Unmodified-Since",
    "Origin",
    "Pragma",
    "Range",
    "Referer",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Version",
    "User-Agent",
    "X-Requested-With",
)

SERVERS = ("nginx", "caddy")
_HOSTPORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):[0-9]{1,5}|[0-9]{1,5}")


@dataclass(frozen=True, slots=True)
class FrontPlan:
    """What the front proxy configuration says, checked.

    - `mount`: the path browsers use (`/sso/`); `qlik_base`: Qlik's prefix path (`/sso/`);
    - `qlik_origin`, `qlik_hostport`, `qlik_https`: the Qlik proxy; `qlik_verify`: TLS
      verification of it (True, False or a CA file); `host_header`: the `Host` Qlik sees when
      fixed (None: the browser's); `qlik_internal_hosts`: host names in Qlik's redirects that
      the browser must not see;
    - `app_hostport`: where the app listens; `listen`: where the front proxy listens;
    - `secret`, `auth_path`: the auth endpoint; `auth_cache_seconds`, `auth_cache_dir`: nginx's
      cache of auth answers (0: none);
    - `read_timeout`, `connect_timeout`: seconds, towards Qlik.
    """

    mount: str
    qlik_base: str
    qlik_origin: str
    qlik_hostport: str
    qlik_https: bool
    qlik_verify: bool | str
    host_header: str | None
    qlik_internal_hosts: tuple[str, ...]
    app_hostport: str
    listen: str
    secret: str
    auth_path: str
    auth_cache_seconds: float
    auth_cache_dir: str
    read_timeout: float
    connect_timeout: float

    @property
    def rewrites_locations(self) -> bool:
        """Qlik's redirects need rewriting when it sees another host or prefix than browsers."""
        return self.host_header is not None or self.mount != self.qlik_base


def plan_from_config(config: QlikSSOConfig) -> FrontPlan:
    """Check the keys the front proxy needs and gather them (errors name the key's file line)."""
    offload, qlik = config.offload, config.qlik
    if offload.secret is None:
        raise config.error(
            "offload.secret",
            "is required for offload mode (set QLIK_SSO_OFFLOAD_SECRET, 32+ characters)",
        )
    try:
        front = FrontProxy(offload.secret.reveal(), offload.auth_path)
    except ConfigurationError as exc:
        raise config.error(f"offload.{exc.field}", exc.message.split(": ", 1)[1]) from None
    app = urlsplit(offload.app_url)
    if app.scheme != "http" or not app.hostname or app.path not in ("", "/"):
        raise config.error("offload.app_url", "must be http://host:port of the app")
    if not _HOSTPORT.fullmatch(offload.listen):
        raise config.error("offload.listen", "must be host:port or a port")
    if offload.auth_cache_seconds < 0:
        raise config.error("offload.auth_cache_seconds", "must be 0 (off) or a number of seconds")
    assert qlik.url is not None  # load_config requires it
    try:
        target = QlikTarget(
            qlik.url, prefix=qlik.prefix, mount_path=qlik.mount_path, host_header=qlik.host_header
        )
    except ConfigurationError as exc:
        raise config.error(f"qlik.{exc.field}", exc.message.split(": ", 1)[1]) from None
    parts = urlsplit(target.url)
    port = parts.port or (443 if target.is_https else 80)
    internal = {h.lower() for h in (qlik.host_header, parts.netloc) if h}
    return FrontPlan(
        mount=target.mount_path or "/",
        qlik_base=target.upstream_base_path,
        qlik_origin=target.url,
        qlik_hostport=f"{parts.hostname}:{port}",
        qlik_https=target.is_https,
        qlik_verify=qlik.verify,
        host_header=qlik.host_header,
        qlik_internal_hosts=tuple(sorted(internal)),
        app_hostport=f"{app.hostname}:{app.port or 80}",
        listen=offload.listen,
        secret=front.secret,
        auth_path=front.auth_path,
        auth_cache_seconds=offload.auth_cache_seconds,
        auth_cache_dir=offload.auth_cache_dir,
        read_timeout=qlik.read_timeout,
        connect_timeout=qlik.connect_timeout,
    )


def render(plan: FrontPlan, server: str) -> str:
    """The configuration of `server` ("nginx" or "caddy") for `plan`."""
    if server == "nginx":
        from .nginx import render_nginx

        return render_nginx(plan)
    if server == "caddy":
        from .caddy import render_caddy

        return render_caddy(plan)
    raise ConfigurationError(
        f"unknown front proxy {server!r}: choose one of {', '.join(SERVERS)}", field="server"
    )
