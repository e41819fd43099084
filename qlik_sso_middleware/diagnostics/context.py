"""What every Qlik-level check shares: the middleware's own client, the `Host` to present, and a
record of every answer (so any session cookie Qlik set can be ended by `cleanup()`; values are
never shown).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ..config import QlikSSOConfig
from ..errors import QlikError
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from ..upstream import Upstream
from .report import Report

__all__ = ["REDIRECTS", "ProbeContext"]

REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    status: int
    set_cookies: tuple[str, ...]
    content_type: str
    inactive: bool  # qps/user JSON {"session": "inactive"}: nothing logged the user in


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
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        inactive = isinstance(body, dict) and body.get("session") == "inactive"
        self.seen.append(
            Seen(
                response.request.method,
                response.request.url.path,
                response.status_code,
                tuple(response.headers.get_list("set-cookie")),
                response.headers.get("content-type", ""),
                inactive,
            )
        )

    async def _get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.upstream.client.get(
            self.base + path, headers={"host": self.host, **(headers or {})}
        )

    # -- the steps --------------------------------------------------------------------------

    async def cleanup(self) -> None:
        """End every Qlik session this check created (cookies from any recorded answer)."""
        pairs: set[tuple[str, str]] = set()
        for seen in self.seen:
            if not seen.path.endswith("qps/user"):
                continue  # only logins set Qlik's session cookie
            for header in seen.set_cookies:
                name, sep, value = header.split(";", 1)[0].partition("=")
                if sep and value.strip():
                    pairs.add((name.strip(), value.strip()))
        for name, value in pairs:
            with contextlib.suppress(httpx.HTTPError):
                await self.upstream.client.delete(
                    self.base + "qps/user", headers={"host": self.host, "cookie": f"{name}={value}"}
                )
        for identity, session in self._qps_sessions:
            with contextlib.suppress(QlikError):
                await self.target.auth.logout(identity, session, self.ctx)
