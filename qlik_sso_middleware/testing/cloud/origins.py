"""Web integrations: which browser origins may use the tenant's cookies, and the CORS answer.

A web integration is "a list of whitelisted origins that can make requests to a specified tenant;
the implementation of the CORS mechanism within Qlik Cloud" (qlik.dev, Web integrations API).
Origins are exact (`https://host[:port]`, no wildcards). Browser clients name the integration in the
`qlik-web-integration-id` header or query parameter (qlik-api's cookie auth does both).

What is checked here [inferred where Qlik does not publish it]: a request carrying a *foreign*
`Origin` (not the tenant's own) that authenticates with cookies, or that logs in with
`/login/jwt-session`, must name a web integration listing that origin, else 403. Bearer-token
requests need none (qlik-api's oauth2 auth sends no integration id). A server-side caller (no
`Origin`) is never subject to it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._asgi import query_get
from .tenant import WebIntegration

__all__ = ["OriginPolicy", "normalise_origin"]


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]` lower-cased without a trailing slash (what the allow list holds)."""
    return origin.strip().rstrip("/").lower()


class OriginPolicy:
    """The tenant's web integrations and its own origin."""

    def __init__(self, integrations: Sequence[WebIntegration], own_origin: str) -> None:
        self.integrations = {w.id: w for w in integrations}
        self.own_origin = normalise_origin(own_origin)

    def foreign_origin(self, headers: list[tuple[str, str]]) -> str | None:
        """The request's `Origin` when it is not the tenant's own, else None."""
        origin = next((v for k, v in headers if k == "origin"), None)
        if origin is None or normalise_origin(origin) == self.own_origin:
            return None
        return origin

    def allows(self, origin: str, headers: list[tuple[str, str]], query: str) -> bool:
        """True when the request names a web integration that lists `origin`."""
        wanted = next((v for k, v in headers if k == "qlik-web-integration-id"), None)
        wanted = wanted or query_get(query, "qlik-web-integration-id")
        integration = self.integrations.get(wanted or "")
        if integration is None:
            return False
        return normalise_origin(origin) in {normalise_origin(o) for o in integration.origins}

    def listed_anywhere(self, origin: str) -> bool:
        """True when any integration lists `origin` (a CORS preflight names no integration)."""
        wanted = normalise_origin(origin)
        return any(
            wanted in {normalise_origin(o) for o in w.origins} for w in self.integrations.values()
        )

    @staticmethod
    def cors_headers(origin: str) -> list[tuple[str, str]]:
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "qlik-csrf-token"),
            ("vary", "Origin"),
        ]
