"""`SessionManager`: single-flight logins, login slots, replacing a stale session."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from qlik_sso_middleware.errors import ConfigurationError, TooManyLogins
from qlik_sso_middleware.sessions import SessionManager
from qlik_sso_middleware.stores.base import QlikSession
from qlik_sso_middleware.stores.memory import MemorySessionStore


def _session(value: str) -> QlikSession:
    return QlikSession("X-Qlik-Session-sso", value, "ACME\\alice", time.time())


async def test_concurrent_callers_share_one_login() -> None:
    manager = SessionManager(MemorySessionStore())
    release = asyncio.Event()
    calls = 0

    async def login() -> QlikSession:
        nonlocal calls
        calls += 1
        await release.wait()
        return _session("s1")

    waiters = [asyncio.create_task(manager.obtain("k", login, 60)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    sessions = await asyncio.gather(*waiters)
    assert calls == 1
    assert {s.cookie_value for s in sessions} == {"s1"}
    assert (await manager.get("k")) == sessions[0]


async def test_a_login_waiting_longer_than_login_wait_for_a_slot_is_refused() -> None:
    manager = SessionManager(MemorySessionStore(), max_concurrent_logins=1, login_wait=0.05)
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with manager.login_slot():
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await held.wait()
    with pytest.raises(TooManyLogins):
        async with manager.login_slot():
            pass  # never reached: the only slot is held
    release.set()
    await holder
    async with manager.login_slot():  # control: the freed slot is usable at once
        pass


async def test_replace_keeps_the_first_fresh_session_and_reports_a_spare() -> None:
    manager = SessionManager(MemorySessionStore())
    stale = _session("old")
    await manager.store.set("k", stale, 60)
    first = await manager.replace("k", stale, _session("new1"), 60)
    assert first.cookie_value == "new1"
    # A second request that still held the stale session brings another fresh one: spare.
    second = await manager.replace("k", stale, _session("new2"), 60)
    assert second.cookie_value == "new1"
    assert (await manager.get("k")).cookie_value == "new1"  # type: ignore[union-attr]


async def test_invalidate_drops_only_the_stale_session() -> None:
    manager = SessionManager(MemorySessionStore())
    await manager.store.set("k", _session("current"), 60)
    await manager.invalidate("k", _session("older"))
    assert await manager.get("k") is not None
    await manager.invalidate("k", _session("current"))
    assert await manager.get("k") is None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_concurrent_logins": 0}, "max_concurrent_logins"),
        ({"max_concurrent_logins": True}, "max_concurrent_logins"),
        ({"login_wait": 0}, "login_wait"),
        ({"login_wait": "1"}, "login_wait"),
    ],
)
def test_bad_limits_are_configuration_errors(options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        SessionManager(MemorySessionStore(), **options)  # type: ignore[arg-type]
    assert info.value.field == field


async def test_a_session_made_for_other_attributes_is_replaced_once_and_retired() -> None:
    manager = SessionManager(MemorySessionStore())
    old = _session("old")
    await manager.store.set("k", old, 60)  # made without attributes (fingerprint "")
    release = asyncio.Event()
    logins = 0
    retired: list[QlikSession] = []

    async def login() -> QlikSession:
        nonlocal logins
        logins += 1
        await release.wait()
        return dataclasses.replace(_session("new"), fingerprint="f1")

    async def retire(stale: QlikSession) -> None:
        retired.append(stale)

    waiters = [
        asyncio.create_task(manager.obtain("k", login, 60, fingerprint="f1", retire=retire))
        for _ in range(10)
    ]
    await asyncio.sleep(0)
    release.set()
    assert {s.cookie_value for s in await asyncio.gather(*waiters)} == {"new"}
    assert (logins, retired) == (1, [old])
    # Control: the same fingerprint again is a cache hit, no login, nothing retired.
    again = await manager.obtain("k", login, 60, fingerprint="f1", retire=retire)
    assert again.cookie_value == "new"
    assert (logins, len(retired)) == (1, 1)
