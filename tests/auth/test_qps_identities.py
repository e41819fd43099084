"""Any valid identity and attribute set survives the trip through the QPS API (property test).

User directories and ids end up in URL path segments (`user/{directory}/{id}`) and JSON bodies;
this checks, against the simulator, that quoting keeps every such identity intact and that the
session created, listed and ended is exactly that user's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qlik_sso_middleware.auth._qps import QPSSettings
from qlik_sso_middleware.auth.base import LoginContext
from qlik_sso_middleware.auth.session_api import SessionApiAuth
from qlik_sso_middleware.identity import QlikIdentity
from qlik_sso_middleware.testing import SimulatorThread, VirtualProxy
from qlik_sso_middleware.upstream import NoCookieJar

_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"),
        # "/" is left out: the simulator routes on the decoded path, so "%2F" splits a segment
        # there (reported); the client's quoting of "/" is checked in test_qps.py instead.
        blacklist_characters="\\/",
    ),
    min_size=1,
    max_size=24,
).filter(lambda s: s == s.strip() and bool(s.strip()))

_ATTRIBUTES = st.lists(
    st.tuples(
        st.sampled_from(["Group", "Role", "Région"]),
        st.text(
            alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs")), max_size=12
        ).filter(lambda s: s == s.strip()),
    ),
    max_size=4,
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    vps = [VirtualProxy(prefix="api", auth="ticket", cooldown=0)]
    with SimulatorThread(vps) as simulator:
        yield simulator


async def _round_trip(
    sim: SimulatorThread, identity: QlikIdentity
) -> tuple[list[tuple[str, str]], list[str], int]:
    files = sim.certificates
    auth = SessionApiAuth(
        QPSSettings(
            api_url=sim.api_url,
            prefix="api",
            root=files.root,
            client_cert=files.client,
            client_key=files.client_key,
        )
    )
    try:
        async with httpx.AsyncClient(cookies=NoCookieJar(), trust_env=False) as client:
            ctx = LoginContext(
                client, sim.proxy_url, "api", sim.proxy_url.split("://")[1], "X-Qlik-Session-api"
            )
            session = await auth.login(identity, ctx)
            attributes = next(
                s.attributes for s in sim.live_sessions() if s.id == session.cookie_value
            )
            listed = [str(s["UserId"]) for s in await auth.list_sessions(identity)]
            ended = await auth.logout_everywhere(identity)
    finally:
        await auth.aclose()
    return attributes, listed, ended


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(directory=_TEXT, user_id=_TEXT, attributes=_ATTRIBUTES)
def test_identity_round_trip(
    sim: SimulatorThread, directory: str, user_id: str, attributes: list[tuple[str, str]]
) -> None:
    identity = QlikIdentity(directory, user_id, attributes)
    seen_attributes, listed, ended = asyncio.run(_round_trip(sim, identity))
    assert seen_attributes == list(identity.attributes)
    assert listed == [user_id]
    assert ended == 1
    assert sim.live_sessions() == []
