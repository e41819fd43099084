"""Qlik Cloud's error body (`{"errors": [{code, title, detail, status}], "traceId"}`) and its 429."""

from __future__ import annotations

import secrets
from typing import Any

__all__ = ["QlikCloudError", "error_body", "rate_limit_body"]


def error_body(status: int, code: str, title: str, detail: str = "") -> dict[str, Any]:
    """The error shape every Qlik Cloud REST API answers with (a trace id per answer)."""
    error: dict[str, Any] = {"code": code, "title": title, "status": str(status)}
    if detail:
        error["detail"] = detail
    return {"errors": [error], "traceId": secrets.token_hex(16)}


def rate_limit_body(retry_after: int) -> dict[str, Any]:
    """The 429 body qlik.dev's rate-limiting page shows (no status or trace id in it)."""
    return {
        "errors": [
            {
                "code": "HTTP-429",
                "title": "API rate limit reached.",
                "detail": f"You need to wait {retry_after} seconds until limit is lifted.",
            }
        ]
    }


class QlikCloudError(Exception):
    """Raised by an endpoint handler to answer `error_body(...)` with `status`."""

    def __init__(self, status: int, code: str, title: str, detail: str = "") -> None:
        super().__init__(detail or title)
        self.status = status
        self.body = error_body(status, code, title, detail)
