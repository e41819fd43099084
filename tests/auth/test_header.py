"""`HeaderAuth` against a simulator configured right and wrong: each mistake named in Qlik terms."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from qlik_sso_middleware import (
    ConfigurationError,
    HeaderAuth,
    InvalidIdentity,
    QlikAccessDenied,
    QlikIdentity,
    QlikRejected,
    QlikUnavailable,
)
from qlik_sso_middleware.auth.base import LoginContext
from qlik_sso_middleware.testing import AccessPasses, QlikSimulator, VirtualProxy
from qlik_sso_middleware.testing.proxy_app import NO_ACCESS_PASS_TEXT
from qlik_sso_middleware.upstream import NoCookieJar

ALICE = QlikIdentity("ACME", "alice")


def jarless() -> httpx.AsyncClient:
    """Like the middleware's own pool: no cookie jar (a jar would mix users' sessions)."""
    return httpx.AsyncClient(cookies=NoCookieJar())


def context(sim: QlikSimulator, client: httpx.AsyncClient, **overrides: str) -> LoginContext:
    values = {"prefix": "sso", "cookie_name": "X-Qlik-Session-sso"} | overrides
    return LoginContext(
        client=client,
        proxy_url=sim.proxy_url,
        prefix=values["prefix"],
        host=sim.proxy_url.removeprefix("http://"),
        cookie_name=values["cookie_name"],
    )


async def test_login_returns_the_session_qlik_created() -> None:
    async with QlikSimulator([VirtualProxy()]) as sim, jarless() as client:
        session = await HeaderAuth("hdr-usr").login(ALICE, context(sim, client))
    assert session.cookie_name == "X-Qlik-Session-sso-HTTP"
    assert [s.id for s in sim.live_sessions("ACME\\alice")] == [session.cookie_value]
    assert session.cookie_value not in repr(session)


async def test_static_user_directory_sends_only_the_user_id() -> None:
    vp = VirtualProxy(auth="header_static", static_user_directory="ACME")
    async with QlikSimulator([vp]) as sim, jarless() as client:
        auth = HeaderAuth("hdr-usr", static_user_directory="ACME")
        await auth.login(ALICE, context(sim, client))
        with pytest.raises(InvalidIdentity):
            auth.check_identity(QlikIdentity("OTHER", "alice"))
    assert sim.requests[-1].header("hdr-usr") == ["alice"]


async def test_wrong_header_name_is_explained() -> None:
    async with QlikSimulator([VirtualProxy(header_name="qlik-user")]) as sim, jarless() as client:
        with pytest.raises(
            QlikRejected, match="did not log the user in with the header 'hdr-usr'"
        ) as info:
            await HeaderAuth("hdr-usr").login(ALICE, context(sim, client))
    assert "header name is exactly" in str(info.value)


async def test_ticket_virtual_proxy_is_explained() -> None:
    async with QlikSimulator([VirtualProxy(auth="ticket")]) as sim, jarless() as client:
        with pytest.raises(QlikRejected, match="authentication method"):
            await HeaderAuth("hdr-usr").login(ALICE, context(sim, client))


async def test_unknown_prefix_is_explained() -> None:
    async with QlikSimulator([VirtualProxy()]) as sim, jarless() as client:
        with pytest.raises(QlikRejected, match="no virtual proxy with this prefix"):
            await HeaderAuth("hdr-usr").login(ALICE, context(sim, client, prefix="SSO-typo"))


async def test_cookie_name_mismatch_is_explained() -> None:
    async with (
        QlikSimulator([VirtualProxy(cookie_name="X-Qlik-Session-hdr")]) as sim,
        jarless() as client,
    ):
        with pytest.raises(
            QlikRejected, match="'X-Qlik-Session-hdr-HTTP' but the configured"
        ) as info:
            await HeaderAuth("hdr-usr").login(ALICE, context(sim, client))
    assert "-HTTP" in str(info.value)


async def test_too_many_sessions_is_access_denied() -> None:
    async with QlikSimulator([VirtualProxy(max_parallel_sessions=1)]) as sim, jarless() as client:
        await HeaderAuth("hdr-usr").login(ALICE, context(sim, client))
        with pytest.raises(QlikAccessDenied, match="too many sessions"):
            await HeaderAuth("hdr-usr").login(ALICE, context(sim, client))


async def test_no_access_pass_shows_when_qlik_is_used_not_at_login() -> None:
    # Qlik checks the access pass when the hub or the engine is used (support article 1715138);
    # its own qps/user creates the session without it.
    access = AccessPasses(users={"ACME\\alice": "none"})
    async with QlikSimulator([VirtualProxy()], access=access) as sim, jarless() as client:
        session = await HeaderAuth("hdr-usr").login(ALICE, context(sim, client))
        hub = await client.get(
            sim.proxy_url + "/sso/hub/", headers={"cookie": session.cookie_header()}
        )
    assert hub.status_code == 403
    assert NO_ACCESS_PASS_TEXT in hub.text


async def test_unreachable_qlik_is_unavailable() -> None:
    async with QlikSimulator([VirtualProxy()]) as sim:
        pass
    async with jarless() as client:
        with pytest.raises(QlikUnavailable, match="unreachable"):
            await HeaderAuth("hdr-usr").login(ALICE, context(sim, client))


async def test_pooled_client_never_keeps_a_cookie() -> None:
    """A shared jar would make the next user's login ride on alice's session."""
    async with QlikSimulator([VirtualProxy()]) as sim, jarless() as client:
        auth = HeaderAuth("hdr-usr")
        await auth.login(ALICE, context(sim, client))
        bob = await auth.login(QlikIdentity("ACME", "bob"), context(sim, client))
    assert len(client.cookies) == 0
    assert [s.id for s in sim.live_sessions("ACME\\bob")] == [bob.cookie_value]


@pytest.mark.parametrize(
    "name", ["X-Qlik-User", "x-qlik-userheader", "X-Qlik-Security-Extra", "bad header", "hdr\u00e9"]
)
def test_header_names_qlik_rejects_are_configuration_errors(name: str) -> None:
    with pytest.raises(ConfigurationError):
        HeaderAuth(name)


def test_attributes_and_non_ascii_cannot_travel_in_a_header() -> None:
    auth = HeaderAuth()
    with pytest.raises(ConfigurationError, match="attributes"):
        auth.check_identity(QlikIdentity("ACME", "alice", {"Group": "Sales"}))
    with pytest.raises(InvalidIdentity, match="US-ASCII"):
        auth.check_identity(QlikIdentity("ACME", "jos\u00e9"))


@pytest.mark.parametrize("pattern", ["$ud\\\\$id", "$ud\\$id"])
async def test_pattern_pasted_from_the_qmc_sends_one_backslash(pattern: str) -> None:
    # The QMC shows the dynamic pattern as `$ud\\$id` (backslash escaped): pasted as it is, the
    # header must still be `CMI\Me`; the unescaped form keeps working too.
    vp = VirtualProxy(prefix="a_", header_name="CMI_Header", dynamic_pattern="$ud\\\\$id")
    me = QlikIdentity("CMI", "Me")
    auth = HeaderAuth("CMI_Header", pattern=pattern)
    assert auth.upstream_headers(me) == [(b"cmi_header", b"CMI\\Me")]
    async with QlikSimulator([vp]) as sim, jarless() as client:
        await auth.login(me, context(sim, client, prefix="a_", cookie_name="X-Qlik-Session-a_"))
        assert sim.requests[-1].header("CMI_Header") == ["CMI\\Me"]
        assert [s.user for s in sim.live_sessions()] == ["CMI\\Me"]


@pytest.mark.parametrize("pattern", ["$ud", "$ud\\\\$id$id", "user"])
def test_pattern_without_both_placeholders_is_a_configuration_error(pattern: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        HeaderAuth(pattern=pattern)
    assert raised.value.field == "pattern"
