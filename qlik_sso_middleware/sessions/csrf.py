"""`CsrfTokens`: the `qlik-csrf-token` of each live Qlik session, fetched once per session.

Qlik has required the token on engine WebSockets since November 2024. It belongs to a session, so
the cache is keyed by the session's cookie value (never shown or logged); probes are single-flight
per session because Qlik logs a user whose session it forgot in again by header on *every* probe,
and five at once exhaust its parallel-session cap.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from ..stores.base import QlikSession

__all__ = ["CsrfTokens", "Probe"]

#: What a probe yields: the session it ended up with (it may renew or adopt one) and its token.
Probe = tuple[QlikSession, str | None]


class CsrfTokens:
    """A bounded LRU of tokens by session cookie value, and the probes in flight."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._tokens: OrderedDict[str, str] = OrderedDict()
        self._probes: dict[str, asyncio.Task[Probe]] = {}

    def cached(self, session_value: str) -> str | None:
        token = self._tokens.get(session_value)
        if token is not None:
            self._tokens.move_to_end(session_value)
        return token

    def remember(self, session_value: str, token: str) -> None:
        self._tokens[session_value] = token
        while len(self._tokens) > self._limit:
            self._tokens.popitem(last=False)

    def forget(self, session_value: str) -> None:
        self._tokens.pop(session_value, None)

    async def probe(self, session_value: str, fetch: Callable[[], Awaitable[Probe]]) -> Probe:
        """Run `fetch` once for concurrent callers with the same session."""
        probe = self._probes.get(session_value)
        if probe is None:
            probe = asyncio.ensure_future(fetch())
            self._probes[session_value] = probe
            probe.add_done_callback(lambda _t: self._probes.pop(session_value, None))
        # shield: a browser that goes away must not cancel the probe other sockets wait for.
        return await asyncio.shield(probe)
