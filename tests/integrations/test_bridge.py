"""The sync → async bridge refuses the two calls that would hang instead of hanging."""

from __future__ import annotations

import asyncio

import pytest

from qlik_sso_middleware import QlikIdentity, QlikSSO, QlikTarget
from qlik_sso_middleware.integrations._bridge import bind_loop, run_in_sso_loop


def make_sso() -> QlikSSO:
    return QlikSSO(QlikTarget("http://127.0.0.1:9"), resolver=lambda conn: None)


def test_refused_before_any_loop_served_the_core() -> None:
    with pytest.raises(RuntimeError, match="not running in a server"):
        run_in_sso_loop(make_sso(), lambda: asyncio.sleep(0, 1))


async def test_refused_on_the_loop_thread_itself() -> None:
    sso = make_sso()
    bind_loop(sso, asyncio.get_running_loop())
    with pytest.raises(RuntimeError, match="await the async form"):
        run_in_sso_loop(sso, lambda: sso.logout(QlikIdentity("ACME", "a")))
    # From a worker thread the same call is submitted to this loop and answered.
    assert await asyncio.to_thread(run_in_sso_loop, sso, lambda: asyncio.sleep(0, 7)) == 7
    await sso.aclose()
