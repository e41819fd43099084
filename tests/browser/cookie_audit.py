"""Chromium's own account of which cookies it refused, read over the DevTools protocol.

`Network.responseReceivedExtraInfo` lists cookies a response tried to set but was not allowed to
(`blockedCookies`), `Network.requestWillBeSentExtraInfo` cookies left off a request
(`associatedCookies` with `blockedReasons`). Third-party blocking by the user's setting shows as
reason "UserPreferences" (or "ThirdPartyPhaseout" in Chromium's 3PCD test mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import BrowserContext, Page

__all__ = ["THIRD_PARTY_REASONS", "BlockedCookie", "CookieAudit"]

THIRD_PARTY_REASONS = frozenset(
    {"UserPreferences", "ThirdPartyPhaseout", "ThirdPartyBlockedInFirstPartySet"}
)


@dataclass(frozen=True)
class BlockedCookie:
    name: str
    reasons: tuple[str, ...]
    direction: str  # "set" (response) or "send" (request)


@dataclass
class CookieAudit:
    """Every cookie Chromium refused to set or send for one page (and its same-process frames)."""

    blocked: list[BlockedCookie] = field(default_factory=list)
    #: Names of every cookie any response tried to set (raw `Set-Cookie` headers; names only).
    set_cookie_names: list[str] = field(default_factory=list)

    @classmethod
    async def attach(cls, context: BrowserContext, page: Page) -> CookieAudit:
        audit = cls()
        session = await context.new_cdp_session(page)
        session.on("Network.responseReceivedExtraInfo", audit._on_response)
        session.on("Network.requestWillBeSentExtraInfo", audit._on_request)
        await session.send("Network.enable")
        return audit

    def _on_response(self, event: dict[str, Any]) -> None:
        for header, value in (event.get("headers") or {}).items():
            if header.lower() == "set-cookie":  # several cookies arrive joined by newlines
                for line in str(value).splitlines():
                    self.set_cookie_names.append(line.split("=", 1)[0].strip())
        for item in event.get("blockedCookies", []):
            cookie = item.get("cookie") or {}
            name = cookie.get("name") or item.get("cookieLine", "").split("=", 1)[0]
            self.blocked.append(BlockedCookie(name, tuple(item.get("blockedReasons", [])), "set"))

    def _on_request(self, event: dict[str, Any]) -> None:
        for item in event.get("associatedCookies", []):
            reasons = tuple(item.get("blockedReasons", []))
            if reasons:
                self.blocked.append(BlockedCookie(item["cookie"]["name"], reasons, "send"))

    def third_party_blocked(self) -> list[BlockedCookie]:
        return [c for c in self.blocked if THIRD_PARTY_REASONS.intersection(c.reasons)]
