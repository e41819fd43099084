"""`TicketAuth` against the simulator: ticket from the QPS API, redeemed through the proxy port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import httpx2 as httpx
import pytest

from qlik_sso_middleware.auth.ticket import TicketAuth, mask_tickets_in_httpx_logs
from qlik_sso_middleware.errors import QlikAccessDenied, QlikRejected
from qlik_sso_middleware.identity import QlikIdentity
from qlik_sso_middleware.testing import ManualClock, QlikSimulator, VirtualProxy

from .sim_helpers import login_context, qps_settings, whoami

ALICE = QlikIdentity("ACME", "alice", {"Group": ["Sales", "EMEA"]})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[QlikSimulator]:
    vps = [VirtualProxy(prefix="tkt", auth="ticket", max_parallel_sessions=2)]
    async with QlikSimulator(vps, clock=clock, pfx_password="sim-pfx-pw") as simulator:
        yield simulator


def tickets_seen(sim: QlikSimulator) -> list[str]:
    """Every ticket value the simulator's proxy port received, in order."""
    found: list[str] = []
    for record in sim.requests:
        if record.port == "proxy":
            query = {k.lower(): v for k, v in parse_qs(record.query).items()}
            found.extend(query.get("qlikticket", []))
    return found


@pytest.mark.parametrize("pfx", [False, True], ids=["pem", "pfx"])
async def test_login_redeems_the_ticket_server_side(sim: QlikSimulator, pfx: bool) -> None:
    auth = TicketAuth(qps_settings(sim, "tkt", pfx=pfx))
    async with login_context(sim, "tkt") as ctx:
        session = await auth.login(ALICE, ctx)
    await auth.aclose()
    assert session.cookie_name == sim.cookie_name("tkt") == "X-Qlik-Session-tkt-HTTP"
    live = sim.live_sessions()
    assert [s.id for s in live] == [session.cookie_value]
    assert live[0].attributes == [("Group", "Sales"), ("Group", "EMEA")]
    calls = [(r.port, r.method, r.path) for r in sim.requests]
    assert calls == [("api", "POST", "/qps/tkt/ticket"), ("proxy", "GET", "/tkt/qps/user")]
    assert len(tickets_seen(sim)) == 1
    me = await whoami(sim, "tkt", session.cookie_header())
    assert (me["userDirectory"], me["userId"]) == ("ACME", "alice")


async def test_expired_ticket_is_replaced_once(sim: QlikSimulator, clock: ManualClock) -> None:
    redemptions = 0

    async def slow_first_hop(request: httpx.Request) -> None:
        nonlocal redemptions
        redemptions += 1
        if redemptions == 1:
            clock.advance(61)  # the first ticket is older than a minute when it arrives

    auth = TicketAuth(qps_settings(sim, "tkt"))
    async with login_context(sim, "tkt", on_request=slow_first_hop) as ctx:
        session = await auth.login(ALICE, ctx)
    await auth.aclose()
    assert redemptions == 2
    first, second = tickets_seen(sim)
    assert first != second
    assert [s.id for s in sim.live_sessions()] == [session.cookie_value]


async def test_used_ticket_is_replaced_once(sim: QlikSimulator) -> None:
    stolen: list[str] = []

    async def someone_redeems_it_first(request: httpx.Request) -> None:
        if not stolen:
            stolen.append(str(request.url))
            async with httpx.AsyncClient(trust_env=False) as thief:
                await thief.get(str(request.url))

    auth = TicketAuth(qps_settings(sim, "tkt"))
    async with login_context(sim, "tkt", on_request=someone_redeems_it_first) as ctx:
        session = await auth.login(ALICE, ctx)
    await auth.aclose()
    assert len(set(tickets_seen(sim))) == 2
    assert session.cookie_value in {s.id for s in sim.live_sessions()}


async def test_two_failed_redemptions_give_up(
    sim: QlikSimulator, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def always_late(request: httpx.Request) -> None:
        clock.advance(61)

    auth = TicketAuth(qps_settings(sim, "tkt"))
    async with login_context(sim, "tkt", on_request=always_late) as ctx:
        with pytest.raises(QlikRejected, match="ticket") as info:
            await auth.login(ALICE, ctx)
    await auth.aclose()
    assert not isinstance(info.value, QlikAccessDenied)
    assert sim.live_sessions() == []
    seen = tickets_seen(sim)
    assert len(seen) == 2
    # The ticket never reaches a log line or an error, not even httpx's request log.
    assert "qlikTicket=***" in caplog.text
    for ticket in seen:
        assert ticket not in caplog.text
        assert ticket not in str(info.value)


async def test_refused_user_is_not_retried(sim: QlikSimulator) -> None:
    auth = TicketAuth(qps_settings(sim, "tkt"))
    async with login_context(sim, "tkt") as ctx:
        await auth.login(ALICE, ctx)
        await auth.login(ALICE, ctx)
        with pytest.raises(QlikAccessDenied):
            await auth.login(ALICE, ctx)
        assert len(tickets_seen(sim)) == 3
        assert await auth.logout_everywhere(ALICE) == 2
    await auth.aclose()
    assert sim.live_sessions() == []


async def test_logout_everywhere_and_list(sim: QlikSimulator) -> None:
    auth = TicketAuth(qps_settings(sim, "tkt"))
    async with login_context(sim, "tkt") as ctx:
        first = await auth.login(ALICE, ctx)
        second = await auth.login(ALICE, ctx)
        assert {e["UserId"] for e in await auth.list_sessions(ALICE)} == {"alice"}
        await auth.logout(ALICE, first, ctx)
    await auth.aclose()
    assert sim.live_sessions() == []
    for session in (first, second):
        assert (await whoami(sim, "tkt", session.cookie_header())).get("session") == "inactive"


@pytest.mark.parametrize("name", ["httpx", "httpx2"])
def test_ticket_mask_is_installed_once(name: str) -> None:
    mask_tickets_in_httpx_logs()
    mask_tickets_in_httpx_logs()
    masks = [
        f
        for f in logging.getLogger(name).filters
        if isinstance(f, logging.Filter) and type(f).__name__ == "_MaskTickets"
    ]
    assert len(masks) == 1
    record = logging.LogRecord(
        name,
        logging.INFO,
        __file__,
        1,
        "GET %s",
        ("http://h/p?a=1&qlikTicket=SECRET1&b=2",),
        None,
    )
    assert masks[0].filter(record)
    assert record.getMessage() == "GET http://h/p?a=1&qlikTicket=***&b=2"
