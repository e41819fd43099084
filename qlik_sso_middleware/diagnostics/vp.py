"""Does `qlik.prefix` name a virtual proxy of this proxy service? Decided from evidence only.

`<prefix>/qps/user` without a session is answered with a login URI (JSON `loginUri` or a redirect)
that QPS builds under the prefix of the VP that answered: `/a_/internal_forms_authentication/...`,
or `proxyRestUri=https://host:4243/qps/a_/` for an external module. That URI naming the prefix
proves the VP; naming no prefix means the default VP answered (a QPS that serves unknown prefixes
from it), which proves the opposite. A 400 page is Qlik's answer for a prefix no linked VP has.
When the answer names nothing, the login step decides (`logoutUri`).

On a 400 the check tries the prefix's likely twins (`a-` for `a_`, `a.`, ...): one that answers
with evidence is the fix. Otherwise the fix is the QMC's: create the VP, or link it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx2 as httpx

from .context import REDIRECTS, ProbeContext, excerpt, json_body, prefix_in_uri
from .network import speaks_tls

__all__ = ["VirtualProxyChecks", "prefix_twins"]

_SEPARATORS = ("_", "-", ".")


def prefix_twins(prefix: str) -> list[str]:
    """Prefixes an administrator may have meant: `_`, `-` and `.` swapped, spaces and `/` dropped."""
    cleaned = prefix.strip().strip("/").replace(" ", "")
    twins = [cleaned] if cleaned != prefix else []
    for old in _SEPARATORS:
        if old in cleaned:
            twins += [cleaned.replace(old, new) for new in _SEPARATORS if new != old]
    return [t for t in dict.fromkeys(twins) if t and t != prefix]


class VirtualProxyChecks(ProbeContext):
    """`vp.exists`: `_virtual_proxy()` is True (proven), False (failed) or None (undecided)."""

    vp_pending = False

    def _vp_title(self) -> str:
        title = f"virtual proxy '{self.target.prefix}' exists"
        typed = self.config.qlik.prefix
        if typed != self.target.prefix:
            title += (
                f" (qlik.prefix '{typed}' is used as '{self.target.prefix}': the QMC lowercases)"
            )
        return title

    async def _virtual_proxy(self) -> bool | None:
        title = self._vp_title()
        try:
            response = await self._get("qps/user")
        except httpx.HTTPError as exc:
            await self._no_answer(title, exc)
            return False
        answered = self._answering_prefix(response)
        prefix = self.target.prefix
        if response.status_code == 400:
            await self._missing(title, response)
            return False
        if answered == prefix:
            self.report.passed("vp.exists", title, "Qlik's login URI names it")
            return True
        if answered is not None:
            where = f"the virtual proxy '{answered}'" if answered else "the default virtual proxy"
            self.report.failed(
                "vp.exists",
                title,
                f"answered by {where} (its login URI names no '{prefix}/'): no VP has this "
                "prefix on this proxy",
                self._create_fix_text(),
                self._create_action(),
            )
            return False
        if response.status_code in REDIRECTS or self._is_qps_user(response):
            self.vp_pending = True  # Qlik answered, but named no VP: the login decides
            return None
        self.report.failed(
            "vp.exists",
            title,
            f"answered {excerpt(response)} instead of Qlik's qps/user JSON",
            "qlik.url must be the Qlik proxy itself (not a load balancer, SSO portal or login "
            "page in front of it)",
        )
        return False

    def _confirm_vp(self, logout_uri: object) -> None:
        """After a login: `logoutUri` naming the prefix settles a pending `vp.exists`."""
        if not self.vp_pending:
            return
        self.vp_pending = False
        title = self._vp_title()
        if isinstance(logout_uri, str) and prefix_in_uri(logout_uri) == self.target.prefix:
            self.report.passed("vp.exists", title, "qps/user's logoutUri names it")
        else:
            self.report.skipped(
                "vp.exists", title, "Qlik's answers name no VP prefix; login worked through it"
            )

    @staticmethod
    def _is_qps_user(response: httpx.Response) -> bool:
        body = json_body(response)
        return response.status_code == 200 and isinstance(body, dict)

    @staticmethod
    def _answering_prefix(response: httpx.Response) -> str | None:
        if response.status_code in REDIRECTS:
            return prefix_in_uri(response.headers.get("location", ""))
        body = json_body(response)
        if isinstance(body, dict):
            for key in ("loginUri", "logoutUri"):
                value = body.get(key)
                if isinstance(value, str):
                    return prefix_in_uri(value)
        return None

    async def _missing(self, title: str, response: httpx.Response) -> None:
        prefix = self.target.prefix
        for twin in prefix_twins(prefix):
            base = f"{self.target.url}/{twin}/"
            try:
                answer = await self._get("qps/user", base=base)
            except httpx.HTTPError:
                continue
            if answer.status_code != 400 and self._answering_prefix(answer) == twin:
                self.report.failed(
                    "vp.exists",
                    title,
                    f"Qlik answered 400 for '{prefix}', but the virtual proxy '{twin}' exists",
                    f"set qlik.prefix = '{twin}' (the prefix exactly as QMC > Virtual proxies "
                    "lists it)",
                    {"config": {"qlik.prefix": twin}},
                )
                return
        self.report.failed(
            "vp.exists",
            title,
            f"Qlik answered {excerpt(response, 60)}: no virtual proxy with the prefix "
            f"'{prefix}' is linked to this proxy service",
            self._create_fix_text(),
            self._create_action(),
        )

    def _create_fix_text(self) -> str:
        prefix = self.target.prefix
        return (
            f"in the QMC, open Virtual proxies: if one has the prefix '{prefix}', link it to this "
            "proxy service (Associated items > Proxies > Link); otherwise create it with that "
            "prefix (or set qlik.prefix to the prefix of the VP you meant, exactly as listed)"
        )

    def _create_action(self) -> dict[str, object]:
        auth = self.config.auth
        settings: dict[str, object] = {"linked": True}
        if auth.strategy == "header":
            settings["header_name"] = auth.header_name
            if auth.static_user_directory:
                settings["auth"] = "header_static"
                settings["static_user_directory"] = auth.static_user_directory
            else:
                settings["auth"] = "header_dynamic"
                settings["dynamic_pattern"] = auth.pattern
        else:
            settings["auth"] = "ticket"
        if self.config.qlik.cookie_name:
            settings["cookie_name"] = self.config.qlik.cookie_name
        return {"virtual_proxy": {"prefix": self.target.prefix, "set": settings}}

    async def _no_answer(self, title: str, exc: httpx.HTTPError) -> None:
        parts = urlsplit(self.target.url)
        host, port = parts.hostname or "", parts.port or 80
        if not self.target.is_https and await speaks_tls(
            host, port, self.config.qlik.connect_timeout
        ):
            fixed = f"https://{parts.netloc}"
            self.report.failed(
                "vp.exists",
                title,
                f"no HTTP answer ({type(exc).__name__}): {parts.netloc} speaks https",
                f"set qlik.url = '{fixed}' (and qlik.verify to the site's root.pem or the CA "
                "that signed the proxy's certificate)",
                {"config": {"qlik.url": fixed}},
            )
            return
        self.report.failed(
            "vp.exists",
            title,
            f"no answer ({type(exc).__name__})",
            "check that qlik.url is the Qlik proxy and that it answers HTTP",
        )
