"""What every Qlik-level check shares: the middleware's own client, the `Host` to present, a record
of every answer (so any session cookie Qlik set can be ended by `cleanup()`; values are never
shown), and the two readers of Qlik's answers that decide what a step may claim:

- `prefix_in_uri`: which virtual proxy a URI built by QPS names (its login URI, `logoutUri`,
  `proxyRestUri`), the evidence that a prefix is a VP; a redirect as such proves nothing, since
  the default VP redirects too.
- `excerpt`: what an answer check does not understand looked like (status, type, the start of the
  body with cookies, tickets, keys and tokens blanked), for the report.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2 as httpx

from ..config import QlikSSOConfig
from ..errors import QlikError
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from ..upstream import Upstream
from .report import Report

__all__ = ["REDIRECTS", "ProbeContext", "excerpt", "json_body", "prefix_in_uri", "redact"]

REDIRECTS = (301, 302, 303, 307, 308)
#: Paths QPS builds under a VP prefix: its login modules and its personal API.
_QPS_PAGES = ("internal_forms_authentication", "internal_windows_authentication", "qps")
# Whatever could be a credential in a URL, a header or a page: blanked before anything is shown.
_SECRETS = re.compile(
    r"(?i)(qlikticket|xrfkey|qlik-csrf-token|x-qlik-session[\w.-]*|targetid|sessionid|ticket|"
    r"token|password|passwd|secret|key|cookie|session)(\"?\s*[=:]\s*\"?)([^\s&;,\"'<>]+)"
)


def redact(text: str) -> str:
    """`text` with the values of ticket, xrfkey, token, key, password, session and cookie
    parameters blanked."""
    return _SECRETS.sub(lambda m: f"{m.group(1)}{m.group(2)}…", text)


_HIDDEN_HTML = re.compile(r"(?is)<(script|style|head)\b.*?</\1\s*>|<[^>]*>")


def excerpt(response: httpx.Response, limit: int = 160) -> str:
    """`403 text/html: "<first words>"`, redacted, for answers a step cannot read (an HTML page
    is shown by its text: the message of Qlik's error pages)."""
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    text = response.content[:4096].decode("utf-8", "replace")
    if "html" in kind:
        text = html.unescape(_HIDDEN_HTML.sub(" ", text))
    text = " ".join(text.split())
    shown = redact(text)[:limit]
    return f"{response.status_code} {kind}" + (f': "{shown}"' if shown else ", empty body")


def json_body(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON."""
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def prefix_in_uri(uri: str) -> str | None:
    """The VP prefix a QPS-built URI names ("" for the default VP), or None when it names none."""
    parts = urlsplit(uri)
    for name, value in parse_qsl(parts.query):
        if name.lower() == "proxyresturi":  # https://host:4243/qps/<prefix>/
            segments = urlsplit(value).path.strip("/").split("/")
            if segments[:1] == ["qps"]:
                return "/".join(segments[1:])
    segments = parts.path.strip("/").split("/")
    for index, segment in enumerate(segments):
        if segment.lower() in _QPS_PAGES:
            return "/".join(segments[:index])
    return None


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    status: int
    set_cookies: tuple[str, ...]
    content_type: str
    inactive: bool  # qps/user JSON {"session": "inactive"}: nothing logged the user in
    shown: str = ""  # `excerpt` of the answer (secrets blanked), for answers no rule explains


class ProbeContext:
    """State shared by the checks of one run against `upstream` (the middleware's own client)."""

    def __init__(self, config: QlikSSOConfig, upstream: Upstream, report: Report) -> None:
        self.config = config
        self.upstream = upstream
        self.report = report
        self.target = upstream.target
        parts = urlsplit(config.app.origin or "")
        if config.qlik.host_header:
            self.host = config.qlik.host_header
        elif parts.netloc and config.app.embedding == "proxy":
            self.host = parts.netloc  # the middleware preserves the browser's Host
        else:
            self.host = urlsplit(self.target.url).netloc
        self.ctx = upstream.login_context(self.host)
        self.base = self.target.url + self.ctx.base_path
        self.seen: list[Seen] = []
        self._qps_sessions: list[tuple[QlikIdentity, QlikSession]] = []
        upstream.client.event_hooks["response"].append(self._record)

    async def _record(self, response: httpx.Response) -> None:
        await response.aread()  # small answers only: qps/user, csrftoken, qrs/about
        body = json_body(response)
        inactive = isinstance(body, dict) and body.get("session") == "inactive"
        self.seen.append(
            Seen(
                response.request.method,
                response.request.url.path,
                response.status_code,
                tuple(response.headers.get_list("set-cookie")),
                response.headers.get("content-type", ""),
                inactive,
                excerpt(response),
            )
        )

    async def _get(
        self, path: str, headers: dict[str, str] | None = None, base: str | None = None
    ) -> httpx.Response:
        return await self.upstream.client.get(
            (base or self.base) + path, headers={"host": self.host, **(headers or {})}
        )

    async def cleanup(self) -> None:
        """End every Qlik session this check created (cookies from any recorded answer)."""
        pairs: set[tuple[str, str, str]] = set()
        for seen in self.seen:
            if not seen.path.endswith("qps/user"):
                continue  # only logins set Qlik's session cookie
            for header in seen.set_cookies:
                name, sep, value = header.split(";", 1)[0].partition("=")
                if sep and value.strip():
                    pairs.add((seen.path, name.strip(), value.strip()))
        for path, name, value in pairs:
            with contextlib.suppress(httpx.HTTPError):
                await self.upstream.client.delete(
                    self.target.url + path,
                    headers={"host": self.host, "cookie": f"{name}={value}"},
                )
        for identity, session in self._qps_sessions:
            with contextlib.suppress(QlikError):
                await self.target.auth.logout(identity, session, self.ctx)
