"""Isolation under concurrency: random interleavings of several users can never mix sessions.

Hypothesis draws, per user, a list of actions (page requests, engine WebSocket messages, bursts
of parallel requests, logouts) and, beside them, Qlik-side events (every session expires on the
simulator's clock, Qlik restarts). The users' lanes and the events run concurrently through the
real middleware and simulator. Every upstream request and frame is tagged with the user who sent
it; the invariant is that Qlik saw each one on that user's own session, and each browser got its
own answers. Run against the memory store and against Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx2 as httpx
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from websockets.asyncio.client import connect

from qlik_sso_middleware import (
    HeaderAuth,
    QlikIdentity,
    QlikSSO,
    QlikSSOMiddleware,
    QlikTarget,
    Tenant,
    TenantResolver,
)
from qlik_sso_middleware.stores.base import SessionStore
from qlik_sso_middleware.stores.memory import MemorySessionStore
from qlik_sso_middleware.stores.redis import RedisSessionStore, Sealer
from qlik_sso_middleware.testing import ManualClock, QlikSimulator, VirtualProxy

from ..apps import build_app
from ..servers import serve

USERS = ("alice", "bob", "carol")
SEALING_KEY = Sealer.generate_key()

user_action = st.one_of(
    st.tuples(st.just("http")),
    st.tuples(st.just("burst"), st.integers(2, 6)),
    st.tuples(st.just("ws"), st.integers(1, 3)),
    st.tuples(st.just("logout")),
)
qlik_event = st.sampled_from(["expire", "restart", "nothing"])
scenario = st.fixed_dictionaries(
    {
        "lanes": st.fixed_dictionaries(
            {u: st.lists(user_action, min_size=1, max_size=6) for u in USERS}
        ),
        "events": st.lists(qlik_event, max_size=4),
    }
).filter(
    # A plan where every user only logs out sends nothing to check.
    lambda plan: any(a[0] != "logout" for lane in plan["lanes"].values() for a in lane)
)


@dataclass
class Outcome:
    """What the browsers saw, checked after the run."""

    problems: list[str] = field(default_factory=list)
    tags: int = 0

    def expect(self, ok: bool, message: str) -> None:
        if not ok:
            self.problems.append(message)


async def run_lane(url: str, user: str, actions: list[tuple[object, ...]], out: Outcome) -> None:
    headers = {"cookie": f"app_user={user}", "accept": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def page() -> None:
            out.tags += 1
            response = await client.get(f"/sso/content/_sim/echo?u={user}&n={out.tags}")
            out.expect(response.status_code == 200, f"{user}: HTTP {response.status_code}")
            if response.status_code == 200:
                got = response.json()["user"]
                out.expect(got == f"ACME\\{user}", f"{user} was answered as {got}")

        for action in actions:
            kind = action[0]
            if kind == "http":
                await page()
            elif kind == "burst":
                count = action[1]
                assert isinstance(count, int)
                await asyncio.gather(*(page() for _ in range(count)))
            elif kind == "logout":
                response = await client.post("/logout", headers={"origin": url})
                out.expect(response.status_code == 200, f"{user}: logout {response.status_code}")
            elif kind == "ws":
                count = action[1]
                assert isinstance(count, int)
                await socket_round_trips(url, user, count, out)


async def socket_round_trips(url: str, user: str, count: int, out: Outcome) -> None:
    async with connect(
        "ws" + url[4:] + f"/sso/app/_sim_echo?u={user}",
        origin=url,  # type: ignore[arg-type]
        additional_headers={"cookie": f"app_user={user}"},
        open_timeout=30,
    ) as ws:
        for _ in range(count):
            out.tags += 1
            message = f"{user}:{out.tags}"
            await ws.send(message)
            echoed = await asyncio.wait_for(ws.recv(), 30)
            out.expect(echoed == message, f"{user} sent {message!r}, got {echoed!r}")


async def run_events(sim: QlikSimulator, clock: ManualClock, events: list[str]) -> None:
    for event in events:
        # Let the users' lanes make progress between Qlik-side events.
        for _ in range(5):
            await asyncio.sleep(0)
        if event == "expire":
            clock.advance(31 * 60)  # past the VP's 30-minute inactivity timeout
        elif event == "restart":
            sim.restart()


def check_what_qlik_saw(sim: QlikSimulator, out: Outcome) -> None:
    for record in sim.requests:
        if record.port != "proxy":
            continue
        sent = record.header("hdr-usr")
        out.expect(len(sent) == 1, f"{record.path}: identity headers {sent}")
        tagged = [p[2:] for p in record.query.split("&") if p.startswith("u=")]
        if tagged:
            owner = f"ACME\\{tagged[0]}"
            out.expect(sent == [owner], f"{owner}'s request carried {sent}")
            # The session Qlik used for the request is the tagged user's own.
            out.expect(record.user == owner, f"{owner}'s request ran as {record.user}")
    for frame in sim.frames:
        if frame.direction == "in" and isinstance(frame.data, str) and ":" in frame.data:
            owner = f"ACME\\{frame.data.split(':', 1)[0]}"
            out.expect(frame.user == owner, f"{owner}'s frame reached Qlik as {frame.user}")


async def check_store(sso: QlikSSO, out: Outcome) -> None:
    upstream = sso.upstreams[0]
    for user in USERS:
        key = f"{upstream.target.key}|ACME\\{user}"
        session = await sso.store.get(key)
        if session is not None:
            out.expect(session.user_key == f"ACME\\{user}", f"{user}'s key holds {session}")


async def run_scenario(make_store: Callable[[], SessionStore], drawn: dict[str, object]) -> Outcome:
    lanes = drawn["lanes"]
    events = drawn["events"]
    assert isinstance(lanes, dict) and isinstance(events, list)
    clock = ManualClock()
    out = Outcome()
    store = make_store()
    try:
        async with QlikSimulator([VirtualProxy(prefix="sso")], api=False, clock=clock) as sim:
            app, sso = build_app(sim, store=store)
            async with serve(app) as url:
                await asyncio.gather(
                    run_events(sim, clock, events),
                    *(run_lane(url, user, actions, out) for user, actions in lanes.items()),
                )
                await check_store(sso, out)
            check_what_qlik_saw(sim, out)
            # Reuse, not a login per request: at most one login per user per Qlik life/expiry
            # and logout, never beyond the 5-session cap.
            for user in USERS:
                out.expect(len(sim.live_sessions(f"ACME\\{user}")) <= 1, f"{user}: >1 session")
    finally:
        await store.aclose()
    return out


SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@SETTINGS
@given(drawn=scenario)
def test_interleaved_users_never_share_a_session_memory_store(drawn: dict[str, object]) -> None:
    out = asyncio.run(run_scenario(MemorySessionStore, drawn))
    assert out.problems == []
    assert out.tags > 0


@SETTINGS
@given(drawn=scenario)
def test_interleaved_users_never_share_a_session_redis_store(
    redis_url: str, drawn: dict[str, object]
) -> None:
    prefix = f"iso-{uuid.uuid4().hex[:8]}:"

    def make() -> SessionStore:
        return RedisSessionStore(redis_url, sealing_keys=[SEALING_KEY], key_prefix=prefix)

    out = asyncio.run(run_scenario(make, drawn))
    assert out.problems == []
    assert out.tags > 0


def test_the_invariant_check_catches_a_crossed_session() -> None:
    """The checker itself: a request tagged for bob that ran on alice's session is reported."""

    async def crossed() -> Outcome:
        out = Outcome()
        async with QlikSimulator([VirtualProxy(prefix="sso")], api=False) as sim:
            async with httpx.AsyncClient(base_url=sim.proxy_url) as qlik:
                login = await qlik.get("/sso/qps/user", headers={"hdr-usr": "ACME\\alice"})
                cookie = login.headers["set-cookie"].split(";")[0]
                await qlik.get(
                    "/sso/content/_sim/echo?u=bob",
                    headers={"cookie": cookie, "hdr-usr": "ACME\\bob"},
                )
            check_what_qlik_saw(sim, out)
        return out

    assert any("ran as ACME\\alice" in p for p in asyncio.run(crossed()).problems)


# -- tenants -----------------------------------------------------------------------------------------

TENANTS = {"a.example": Tenant("TENANT_A", "ta"), "b.example": Tenant("TENANT_B", "tb")}


def tenant_session_user(conn: HTTPConnection) -> QlikIdentity | None:
    """The app's session names the user *and the tenant it was opened on* (see TenantResolver)."""
    user, tenant = conn.cookies.get("app_user"), conn.cookies.get("app_tenant")
    if not user or tenant != (conn.url.hostname or "").lower():
        return None
    return QlikIdentity("APP", user)


async def tenant_request(url: str, host: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.get(
            path, headers={"host": host, "accept": "application/json", **headers}
        )


async def test_one_tenants_user_never_reaches_another_tenants_qlik() -> None:
    vps = [
        VirtualProxy(prefix="ta", header_name="hdr-a"),
        VirtualProxy(prefix="tb", header_name="hdr-b"),
    ]
    async with QlikSimulator(vps, api=False) as sim:
        targets = [
            QlikTarget(sim.proxy_url, prefix="ta", auth=HeaderAuth("hdr-a")),
            QlikTarget(sim.proxy_url, prefix="tb", auth=HeaderAuth("hdr-b")),
        ]
        sso = QlikSSO(targets, resolver=TenantResolver(TENANTS, tenant_session_user))
        async with serve(QlikSSOMiddleware(Starlette(), sso=sso)) as url:
            port = url.rsplit(":", 1)[1]
            alice = {"cookie": "app_user=alice; app_tenant=a.example"}
            own = await tenant_request(url, f"a.example:{port}", "/ta/content/_sim/echo", alice)
            # alice asks for tenant B's Qlik from her own host: bound to target ta -> refused.
            other_mount = await tenant_request(
                url, f"a.example:{port}", "/tb/content/_sim/echo", alice
            )
            # alice replays her cookie against tenant B's host: her session is not B's -> nobody.
            replayed = await tenant_request(
                url, f"b.example:{port}", "/tb/content/_sim/echo", alice
            )
            # tenant B's identity header, spoofed on tenant A's mount, is stripped.
            spoofed = await tenant_request(
                url,
                f"a.example:{port}",
                "/ta/content/_sim/echo",
                {**alice, "hdr-b": "TENANT_B\\bob", "hdr_a": "TENANT_A\\admin"},
            )
    assert own.status_code == 200 and own.json()["user"] == "TENANT_A\\alice"
    assert other_mount.status_code == 403
    assert replayed.status_code == 401
    assert spoofed.status_code == 200 and spoofed.json()["user"] == "TENANT_A\\alice"
    assert [r for r in sim.requests if r.prefix == "tb"] == []
    for record in sim.requests:
        assert record.header("hdr-a") == ["TENANT_A\\alice"]
        assert record.header("hdr-b") == []


# -- a store an attacker can write to ------------------------------------------------------------


async def test_another_users_sealed_session_copied_in_redis_is_not_used(redis_url: str) -> None:
    """Someone with write access to Redis (not to the sealing key) copies bob's sealed session
    under alice's key: the value is bound to its key, so alice gets her own new session."""
    prefix = f"swap-{uuid.uuid4().hex[:8]}:"
    store = RedisSessionStore(redis_url, sealing_keys=[SEALING_KEY], key_prefix=prefix)
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        async with QlikSimulator([VirtualProxy(prefix="sso")], api=False) as sim:
            app, sso = build_app(sim, store=store)
            async with serve(app) as url:
                for user in ("alice", "bob"):
                    await tenant_request(
                        url, url[7:], "/sso/content/_sim/echo", {"cookie": f"app_user={user}"}
                    )
                target_key = sso.upstreams[0].target.key

                def redis_key(user: str) -> str:
                    digest = hashlib.sha256(f"{target_key}|ACME\\{user}".encode()).hexdigest()
                    return f"{prefix}s:{{{digest[:32]}}}"

                bobs = await raw.get(redis_key("bob"))
                assert bobs is not None
                await raw.set(redis_key("alice"), bobs)
                response = await tenant_request(
                    url, url[7:], "/sso/content/_sim/echo", {"cookie": "app_user=alice"}
                )
    finally:
        await raw.aclose()
        await store.aclose()
    assert response.status_code == 200
    assert response.json()["user"] == "ACME\\alice"
    assert sim.requests[-1].user == "ACME\\alice"
    assert sim.logins("ACME\\alice") == 2  # a fresh login, not bob's session
