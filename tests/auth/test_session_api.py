"""`SessionApiAuth` against the simulator's mutual-TLS QPS API and its proxy port."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qlik_sso_middleware.auth._qps import QPSClient, QPSSettings
from qlik_sso_middleware.auth.base import AuthStrategy
from qlik_sso_middleware.auth.session_api import SessionApiAuth
from qlik_sso_middleware.errors import (
    ClientCertificateRejected,
    ConfigurationError,
    QlikAccessDenied,
    QlikUnavailable,
)
from qlik_sso_middleware.identity import QlikIdentity
from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy, generate_certificates

from .sim_helpers import login_context, qps_settings, whoami

ALICE = QlikIdentity("ACME", "alice", {"Group": ["Sales", "EMEA"], "Role": "viewer"})


@pytest.fixture
async def sim() -> AsyncIterator[QlikSimulator]:
    vps = [VirtualProxy(prefix="api", auth="ticket", max_parallel_sessions=5)]
    async with QlikSimulator(vps, pfx_password="sim-pfx-pw") as simulator:
        yield simulator


@pytest.mark.parametrize("pfx", [False, True], ids=["pem", "pfx"])
async def test_login_creates_a_working_session_with_attributes(
    sim: QlikSimulator, pfx: bool
) -> None:
    auth = SessionApiAuth(qps_settings(sim, "api", pfx=pfx))
    assert isinstance(auth, AuthStrategy)
    try:
        async with login_context(sim, "api") as ctx:
            session = await auth.login(ALICE, ctx)
    finally:
        await auth.aclose()
    assert session.cookie_name == "X-Qlik-Session-api-HTTP" == sim.cookie_name("api")
    assert re.fullmatch(r"[0-9a-f]{32}", session.cookie_value)
    assert session.user_key == "ACME\\alice"
    live = sim.live_sessions()
    assert [s.id for s in live] == [session.cookie_value]
    assert live[0].attributes == [("Group", "Sales"), ("Group", "EMEA"), ("Role", "viewer")]
    me = await whoami(sim, "api", session.cookie_header())
    assert (me["userDirectory"], me["userId"]) == ("ACME", "alice")
    # One API call, nothing through the proxy port.
    assert [(r.port, r.method) for r in sim.requests if r.path != "/api/qps/user"] == [
        ("api", "POST")
    ]
    assert auth.upstream_headers(ALICE) == []


async def test_non_ascii_user(sim: QlikSimulator) -> None:
    zoe = QlikIdentity("ÉQUIPE", "zoë")
    auth = SessionApiAuth(qps_settings(sim, "api"))
    auth.check_identity(zoe)
    async with login_context(sim, "api") as ctx:
        session = await auth.login(zoe, ctx)
        assert [s.user for s in sim.live_sessions()] == ["ÉQUIPE\\zoë"]
        assert len(await auth.list_sessions(zoe)) == 1
        await auth.logout(zoe, session, ctx)
    await auth.aclose()
    assert sim.live_sessions() == []


async def test_logout_everywhere_ends_sessions_from_two_browsers(sim: QlikSimulator) -> None:
    bob = QlikIdentity("ACME", "bob")
    auth = SessionApiAuth(qps_settings(sim, "api"))
    async with login_context(sim, "api") as ctx:
        first = await auth.login(ALICE, ctx)
        second = await auth.login(ALICE, ctx)
        other = await auth.login(bob, ctx)
        listed = await auth.list_sessions(ALICE)
        assert len(listed) == 2
        for entry in listed:
            assert "SessionId" not in entry
            assert re.fullmatch(r"[0-9a-f]{16}", entry["SessionFingerprint"])
            assert first.cookie_value not in str(entry)
            assert second.cookie_value not in str(entry)
        await auth.logout(ALICE, first, ctx)
        assert await auth.list_sessions(ALICE) == []
        # Safe to call again when the user has no session left.
        await auth.logout(ALICE, None, ctx)
        assert await auth.logout_everywhere(ALICE) == 0
    await auth.aclose()
    for session in (first, second):
        assert (await whoami(sim, "api", session.cookie_header())).get("session") == "inactive"
    assert [s.id for s in sim.live_sessions()] == [other.cookie_value]


async def test_logout_scope_session_ends_only_that_session(sim: QlikSimulator) -> None:
    async with QPSClient(qps_settings(sim, "api")) as shared:
        auth = SessionApiAuth(shared, logout_scope="session")
        async with login_context(sim, "api") as ctx:
            first = await auth.login(ALICE, ctx)
            second = await auth.login(ALICE, ctx)
            await auth.logout(ALICE, first, ctx)
            await auth.logout(ALICE, None, ctx)
        # The strategy does not close a client it was given.
        await auth.aclose()
        assert [s.id for s in sim.live_sessions()] == [second.cookie_value]
        assert await auth.logout_everywhere(ALICE) == 1
    assert sim.live_sessions() == []


async def test_sixth_session_is_refused_by_the_cap(sim: QlikSimulator) -> None:
    auth = SessionApiAuth(qps_settings(sim, "api"))
    async with login_context(sim, "api") as ctx:
        for _ in range(5):
            await auth.login(ALICE, ctx)
        with pytest.raises(QlikAccessDenied, match="too many sessions"):
            await auth.login(ALICE, ctx)
    await auth.aclose()
    assert len(sim.live_sessions()) == 5


async def test_prefix_mismatch_is_a_configuration_error(sim: QlikSimulator) -> None:
    auth = SessionApiAuth(qps_settings(sim, "api"))
    async with login_context(sim, "other") as ctx:
        with pytest.raises(ConfigurationError) as info:
            await auth.login(ALICE, ctx)
    await auth.aclose()
    assert info.value.field == "prefix"
    assert sim.live_sessions() == []


def test_bad_options() -> None:
    with pytest.raises(ConfigurationError) as info:
        SessionApiAuth(object())  # type: ignore[arg-type]
    assert info.value.field == "qps"


async def test_logout_scope_validated(sim: QlikSimulator) -> None:
    with pytest.raises(ConfigurationError) as info:
        SessionApiAuth(qps_settings(sim, "api"), logout_scope="all")  # type: ignore[arg-type]
    assert info.value.field == "logout_scope"


async def test_no_session_id_in_logs(sim: QlikSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = SessionApiAuth(qps_settings(sim, "api"))
    async with login_context(sim, "api") as ctx:
        session = await auth.login(ALICE, ctx)
        await auth.logout(ALICE, session, ctx)
    await auth.aclose()
    assert "POST session" in caplog.text
    assert session.cookie_value not in caplog.text
    assert session.cookie_value not in repr(session)


async def test_foreign_client_certificate_is_rejected_by_the_simulator(
    sim: QlikSimulator, tmp_path: Path
) -> None:
    # Verification is off (loopback) so that the handshake reaches the client-certificate check.
    other = generate_certificates(tmp_path)
    settings = QPSSettings(
        api_url=str(sim.api_url),
        prefix="api",
        root=None,
        verify=False,
        client_cert=other.client,
        client_key=other.client_key,
    )
    auth = SessionApiAuth(settings)
    async with login_context(sim, "api") as ctx:
        with pytest.raises(ClientCertificateRejected, match="client certificate not accepted"):
            await auth.login(ALICE, ctx)
    await auth.aclose()
    assert sim.live_sessions() == []


async def test_plain_http_port_is_not_qps(sim: QlikSimulator) -> None:
    files = sim.certificates
    assert files is not None
    settings = QPSSettings(
        api_url=sim.proxy_url.replace("http://", "https://"),
        prefix="api",
        root=files.root,
        client_cert=files.client,
        client_key=files.client_key,
    )
    auth = SessionApiAuth(settings)
    async with login_context(sim, "api") as ctx:
        with pytest.raises(QlikUnavailable, match="4243"):
            await auth.login(ALICE, ctx)
    with pytest.raises(QlikUnavailable, match="4243"):
        await auth.probe()
    await auth.aclose()


async def test_probe_succeeds_against_the_simulator(sim: QlikSimulator) -> None:
    auth = SessionApiAuth(qps_settings(sim, "api"))
    await auth.probe()
    await auth.aclose()
    probes = [r for r in sim.requests if r.port == "api"]
    assert [(r.method, r.status) for r in probes] == [("GET", 404)]
    assert sim.live_sessions() == []


async def test_strategy_works_again_after_aclose(sim: QlikSimulator) -> None:
    """Servers may run the lifespan (and so `aclose`) more than once."""
    auth = SessionApiAuth(qps_settings(sim, "api"))
    async with login_context(sim, "api") as ctx:
        await auth.login(ALICE, ctx)
        await auth.aclose()
        await auth.login(ALICE, ctx)
    await auth.aclose()
    assert len(sim.live_sessions()) == 2
