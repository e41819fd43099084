"""`UserSession` against the simulator: what each of Qlik's answers means for the session held.

The answers are real ones, fetched with the target's own engine; the session is the one the
middleware would hold for alice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from qlik_sso_middleware import HeaderAuth, QlikIdentity, QlikSSO, QlikTarget
from qlik_sso_middleware.errors import RequestRefused
from qlik_sso_middleware.proxy.engine import UpstreamResponse
from qlik_sso_middleware.proxy.request import ProxiedRequest
from qlik_sso_middleware.sessions import UserSession, session_key
from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

ALICE = QlikIdentity("ACME", "alice")


@pytest.fixture
async def sim() -> AsyncIterator[QlikSimulator]:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as simulator:
        yield simulator


@pytest.fixture
async def sso(sim: QlikSimulator) -> AsyncIterator[QlikSSO]:
    target = QlikTarget(sim.proxy_url, prefix="sso", auth=HeaderAuth("hdr-usr"))
    instance = QlikSSO(target, resolver=lambda conn: ALICE)
    yield instance
    await instance.aclose()


def _request(method: str, sub_path: str) -> ProxiedRequest:
    scope = {"type": "http", "method": method, "headers": [(b"host", b"app.test")]}
    return ProxiedRequest(scope, sub_path)


async def _ask(
    sso: QlikSSO, session: UserSession, sub_path: str, *, identity_header: bool
) -> UpstreamResponse:
    """Qlik's answer to GET `sub_path` with the session held (and the identity header or not)."""
    route = sso.upstreams[0].route
    headers = [(b"host", b"app.test"), (b"cookie", session.cookie_header())]
    if identity_header:
        headers.extend(session.identity_headers())
    return await route.engine.stream("GET", f"{route.origin}/sso/{sub_path}", headers, None)


async def _opened(sso: QlikSSO) -> UserSession:
    session = sso.user_session(sso.upstreams[0], ALICE, "app.test")
    await session.open()
    return session


async def test_open_reads_the_cached_session_and_logs_in_only_once(
    sim: QlikSimulator, sso: QlikSSO
) -> None:
    first = await _opened(sso)
    second = await _opened(sso)
    assert first.session == second.session
    assert sim.logins("ACME\\alice") == 1


async def test_a_redirect_to_qlik_login_renews_and_asks_for_one_retry(
    sim: QlikSimulator, sso: QlikSSO
) -> None:
    session = await _opened(sso)
    stale = session.session
    sim.restart()  # Qlik forgets every session
    answer = await _ask(sso, session, "hub/", identity_header=False)
    assert answer.status_code == 302
    assert await session.review(answer, _request("GET", "hub/")) is True
    assert session.session is not None and stale is not None
    assert session.session.cookie_value != stale.cookie_value
    assert sim.logins("ACME\\alice") == 2
    cached = await sso.store.get(session_key(sso.upstreams[0], ALICE))
    assert cached == session.session


async def test_a_request_with_effects_is_not_repeated_after_a_renewal(
    sim: QlikSimulator, sso: QlikSSO
) -> None:
    session = await _opened(sso)
    sim.restart()
    answer = await _ask(sso, session, "hub/", identity_header=False)
    with pytest.raises(RequestRefused) as info:
        await session.review(answer, _request("POST", "hub/"))
    assert info.value.status_code == 503
    assert sim.logins("ACME\\alice") == 2  # renewed all the same, for the browser's retry


async def test_the_answer_to_a_repeated_request_never_renews_again(
    sim: QlikSimulator, sso: QlikSSO
) -> None:
    session = await _opened(sso)
    sim.restart()
    answer = await _ask(sso, session, "hub/", identity_header=False)
    assert await session.review(answer, _request("GET", "hub/"), retried=True) is False
    assert sim.logins("ACME\\alice") == 1
    # Control: the same answer, not from a repeat, does renew.
    answer = await _ask(sso, session, "hub/", identity_header=False)
    assert await session.review(answer, _request("GET", "hub/")) is True
    assert sim.logins("ACME\\alice") == 2


async def test_a_session_qlik_reissued_by_header_is_adopted(
    sim: QlikSimulator, sso: QlikSSO
) -> None:
    session = await _opened(sso)
    sim.restart()
    answer = await _ask(sso, session, "qps/user", identity_header=True)
    issued = [c for c in answer.header_values(b"set-cookie")]
    assert issued, "a header VP logs the user in again and sets a new cookie"
    assert await session.review(answer, _request("GET", "hub/")) is False
    cached = await sso.store.get(session_key(sso.upstreams[0], ALICE))
    assert cached is not None
    assert issued[0].decode().startswith(f"{cached.cookie_name}={cached.cookie_value};")


async def test_the_websocket_token_is_fetched_once_per_session(
    sim: QlikSimulator, sso: QlikSSO
) -> None:
    session = await _opened(sso)
    token = await session.websocket_token()
    assert token
    assert await session.handshake_refused() is False  # a fresh token: nothing to retry
    again = await _opened(sso)
    assert await again.websocket_token() == token
    asked = [r for r in sim.requests if r.path.endswith("/qps/csrftoken")]
    assert len(asked) == 1
    # A refusal with the cached token drops it: the next connect fetches a fresh one.
    assert await again.handshake_refused() is True
    assert await again.websocket_token() == token
    assert len([r for r in sim.requests if r.path.endswith("/qps/csrftoken")]) == 2


async def test_ended_forgets_the_session(sim: QlikSimulator, sso: QlikSSO) -> None:
    session = await _opened(sso)
    await session.ended()
    assert await sso.store.get(session_key(sso.upstreams[0], ALICE)) is None
    await _opened(sso)
    assert sim.logins("ACME\\alice") == 2


def test_the_session_must_be_opened_first(sso: QlikSSO) -> None:
    session = sso.user_session(sso.upstreams[0], ALICE, "app.test")
    with pytest.raises(RuntimeError, match="open"):
        session.cookie_header()
