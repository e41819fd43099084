"""Helpers for the clients that call httpx *transports* directly (QPS, Qlik Cloud).

Both skip `httpx.AsyncClient` so that no full URL (tickets, session ids) reaches httpx's INFO log;
they then need their own bounded body read and a walk of the exception chain to name the cause.
"""

from __future__ import annotations

import httpx2 as httpx

__all__ = ["exception_chain", "read_capped"]


def exception_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes, outermost first; stops at a loop or after 16 links."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


async def read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The whole raw body, or None as soon as it passes `limit` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
