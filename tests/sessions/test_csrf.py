"""`CsrfTokens`: a bounded cache per session and one probe at a time per session."""

from __future__ import annotations

import asyncio
import time

from qlik_sso_middleware.sessions.csrf import CsrfTokens, Probe
from qlik_sso_middleware.stores.base import QlikSession

_SESSION = QlikSession("X-Qlik-Session-sso", "s1", "ACME\\alice", time.time())


def test_the_cache_is_bounded_and_keeps_the_recently_used() -> None:
    tokens = CsrfTokens(limit=2)
    tokens.remember("a", "ta")
    tokens.remember("b", "tb")
    assert tokens.cached("a") == "ta"  # now the most recently used
    tokens.remember("c", "tc")
    assert tokens.cached("b") is None
    assert (tokens.cached("a"), tokens.cached("c")) == ("ta", "tc")
    tokens.forget("a")
    assert tokens.cached("a") is None


async def test_concurrent_probes_of_one_session_share_one_fetch() -> None:
    tokens = CsrfTokens()
    release = asyncio.Event()
    fetches = 0

    async def fetch() -> Probe:
        nonlocal fetches
        fetches += 1
        await release.wait()
        return _SESSION, "token"

    probes = [asyncio.create_task(tokens.probe("s1", fetch)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*probes) == [(_SESSION, "token")] * 5
    assert fetches == 1


async def test_a_caller_that_leaves_does_not_cancel_the_shared_probe() -> None:
    tokens = CsrfTokens()
    started = asyncio.Event()
    release = asyncio.Event()

    async def fetch() -> Probe:
        started.set()
        await release.wait()
        return _SESSION, "token"

    leaving = asyncio.create_task(tokens.probe("s1", fetch))
    await started.wait()
    staying = asyncio.create_task(tokens.probe("s1", fetch))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert await staying == (_SESSION, "token")
