"""Attributes that take effect (issue 19): Qlik reads groups and roles only when a session is made,
so a user whose attributes change gets a new Qlik session at their next request, and the old one
is ended, once, across app instances sharing Redis.

Header authentication carries no attributes at all (`HeaderAuth` refuses them), so these tests use
the two QPS API strategies, against the simulator's mutual-TLS API.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from starlette.requests import HTTPConnection

from qlik_sso_middleware import QlikIdentity
from qlik_sso_middleware.stores.redis import RedisSessionStore, Sealer
from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

from ..apps import build_app
from ..auth.test_strategies_e2e import strategy
from ..servers import serve

#: The app's own view of each user's groups; tests change it between requests.
GROUPS: dict[str, list[str]] = {}


def resolver(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.cookies.get("app_user")
    return QlikIdentity("ACME", user, {"Group": GROUPS[user]}) if user else None


@pytest.fixture(params=["session_api", "ticket"])
async def qlik(request: pytest.FixtureRequest) -> AsyncIterator[tuple[QlikSimulator, str]]:
    GROUPS.clear()
    async with QlikSimulator([VirtualProxy(prefix="sso", auth="ticket")]) as sim:
        yield sim, request.param


def live_groups(sim: QlikSimulator) -> list[list[str]]:
    return [sorted(v for _, v in s.attributes) for s in sim.live_sessions("ACME\\alice")]


async def test_a_group_removed_mid_session_is_gone_from_the_next_request(
    qlik: tuple[QlikSimulator, str],
) -> None:
    sim, kind = qlik
    app, _ = build_app(sim, target={"auth": strategy(sim, kind)}, resolver=resolver)
    GROUPS["alice"] = ["EMEA", "Sales"]
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        assert (await client.get("/sso/content/_sim/echo")).status_code == 200
        [before] = sim.live_sessions("ACME\\alice")
        assert live_groups(sim) == [["EMEA", "Sales"]]
        # Control: the same attributes again keep the session.
        assert (await client.get("/sso/content/_sim/echo")).status_code == 200
        assert sim.logins("ACME\\alice") == 1

        GROUPS["alice"] = ["Sales"]  # removed from EMEA in the app
        response = await client.get("/sso/content/_sim/echo")
        assert response.status_code == 200
        assert live_groups(sim) == [["Sales"]]  # the old session was ended, not left to idle out
        assert sim.session(before.id) is None
        assert before.end_reason == "logout"
        [after] = sim.live_sessions("ACME\\alice")
        assert sim.requests[-1].session_id == after.id
        assert sim.logins("ACME\\alice") == 2
        # Order of the attributes does not count as a change.
        GROUPS["alice"] = ["Sales"]
        assert (await client.get("/sso/content/_sim/echo")).status_code == 200
        assert sim.logins("ACME\\alice") == 2


async def test_instances_sharing_redis_log_in_once_after_a_change(
    qlik: tuple[QlikSimulator, str], redis_url: str
) -> None:
    sim, kind = qlik
    key, prefix = Sealer.generate_key(), f"attrs-{uuid.uuid4().hex}:"
    apps = [
        build_app(
            sim,
            target={"auth": strategy(sim, kind)},
            resolver=resolver,
            store=RedisSessionStore(redis_url, sealing_keys=[key], key_prefix=prefix),
        )
        for _ in range(2)
    ]
    GROUPS["alice"] = ["EMEA", "Sales"]
    async with (
        serve(apps[0][0]) as url_a,
        serve(apps[1][0]) as url_b,
        httpx.AsyncClient(cookies={"app_user": "alice"}) as client,
    ):
        assert (await client.get(url_a + "/sso/content/_sim/echo")).status_code == 200
        assert (await client.get(url_b + "/sso/content/_sim/echo")).status_code == 200
        assert sim.logins("ACME\\alice") == 1  # instance B used A's session

        GROUPS["alice"] = ["Sales"]
        answers = await asyncio.gather(
            *(client.get(u + "/sso/content/_sim/echo") for u in [url_a, url_b] * 8)
        )
        assert {r.status_code for r in answers} == {200}
        assert sim.logins("ACME\\alice") == 2
        assert live_groups(sim) == [["Sales"]]
    for _, sso in apps:
        await sso.store.aclose()
