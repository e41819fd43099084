"""The simulated tenant's rate limit: a sliding window per tier and principal, 429 + Retry-After.

Qlik evaluates limits "per tier, per user, per tenant" and answers an excess with 429, a
`Retry-After` header in seconds and `{"errors": [{"code": "HTTP-429", "title": "API rate limit
reached.", "detail": "You need to wait 13 seconds until limit is lifted."}]}` (qlik.dev, Rate
limiting). A refused request does not count against the window [inferred].
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from .tenant import TierLimit

__all__ = ["RateLimiter"]


class RateLimiter:
    """Counts requests per (tier, principal) in a sliding window of the tier's length."""

    def __init__(self, tiers: dict[int, TierLimit], clock: Callable[[], float]) -> None:
        self._tiers = dict(tiers)
        self._clock = clock
        self._log: dict[tuple[int, str], deque[float]] = {}
        #: how many requests each (tier, principal) had refused with 429
        self.refused: dict[tuple[int, str], int] = {}

    def admit(self, tier: int, principal: str) -> int | None:
        """Record one request; None when admitted, else the Retry-After seconds (>= 1)."""
        limit = self._tiers[tier]
        now = self._clock()
        log = self._log.setdefault((tier, principal), deque())
        while log and log[0] <= now - limit.window:
            log.popleft()
        if len(log) >= limit.requests:
            self.refused[(tier, principal)] = self.refused.get((tier, principal), 0) + 1
            return max(1, math.ceil(log[0] + limit.window - now))
        log.append(now)
        return None

    def admitted(self, tier: int, principal: str) -> list[float]:
        """Times of the requests admitted within the current window (for assertions)."""
        return list(self._log.get((tier, principal), ()))
