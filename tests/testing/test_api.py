"""The simulated QPS REST API: mutual TLS, xrfkey, tickets, sessions, users."""

from __future__ import annotations

import asyncio
import ssl

import httpx2 as httpx
import pytest

from qlik_sso_middleware.testing import ManualClock, QlikSimulator, VirtualProxy

from ..waiting import eventually
from .conftest import USER, XRF, api_client, xrf

ALICE = {"UserDirectory": "ACME", "UserId": "alice"}


async def test_client_without_certificate_fails_the_handshake(sim: QlikSimulator) -> None:
    async with api_client(sim, with_cert=False) as api:
        path, headers = xrf("/qps/sso/ticket")
        with pytest.raises(httpx.TransportError):
            await api.post(path, headers=headers, json=ALICE)
    assert [r for r in sim.requests if r.port == "api"] == []


async def test_client_signed_by_another_root_fails(sim: QlikSimulator, tmp_path: object) -> None:
    from qlik_sso_middleware.testing import generate_certificates

    other = generate_certificates(str(tmp_path))
    assert sim.certificates is not None
    context = ssl.create_default_context(cafile=str(sim.certificates.root))
    context.load_cert_chain(str(other.client), str(other.client_key))
    async with httpx.AsyncClient(base_url=str(sim.api_url), verify=context) as api:
        with pytest.raises(httpx.TransportError):
            await api.post("/qps/sso/ticket", json=ALICE)


@pytest.mark.parametrize(
    ("query", "header"),
    [
        ("", None),
        (f"?xrfkey={XRF}", None),
        ("", XRF),
        (f"?xrfkey={XRF}", XRF.upper()),
        ("?xrfkey=short", "short"),
        ("?xrfkey=abcdefghij12345!", "abcdefghij12345!"),
    ],
)
async def test_xrfkey_rule(sim: QlikSimulator, query: str, header: str | None) -> None:
    headers = {"X-Qlik-Xrfkey": header} if header is not None else {}
    async with api_client(sim) as api:
        response = await api.post(f"/qps/sso/ticket{query}", headers=headers, json=ALICE)
    assert response.status_code == 403
    assert response.text == "XSRF prevention check failed. Possible XSRF discovered."
    assert sim.requests[-1].port == "api"
    assert sim.requests[-1].status == 403


async def test_ticket_is_created_case_insensitively_and_redeemed_once(sim: QlikSimulator) -> None:
    async with api_client(sim) as api:
        response = await api.post(
            f"/qps/sso/ticket?XrfKey={XRF}",
            headers={"X-Qlik-Xrfkey": XRF},
            json={
                "userdirectory": " ACME ",
                "USERID": "alice",
                "attributes": [{"group": "sales"}, {"group": ""}],
            },
        )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"UserDirectory", "UserId", "Attributes", "Ticket", "TargetUri"}
    assert (body["UserDirectory"], body["UserId"]) == ("ACME", "alice")
    assert body["Attributes"] == [{"group": "sales"}, {"group": ""}]
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        first = await client.get(f"/sso/hub/?qlikTicket={body['Ticket']}")
        client.cookies.clear()
        again = await client.get(f"/sso/hub/?qlikTicket={body['Ticket']}")
    assert first.status_code == 200
    assert first.headers["set-cookie"].startswith("X-Qlik-Session-sso-HTTP=")
    assert again.status_code == 302
    [session] = sim.live_sessions(USER)
    assert session.attributes == [("group", "sales"), ("group", "")]


async def test_ticket_expires_after_a_minute_by_the_clock(
    sim: QlikSimulator, clock: ManualClock
) -> None:
    async with api_client(sim) as api:
        path, headers = xrf("/qps/sso/ticket")
        tickets = [
            (await api.post(path, headers=headers, json=ALICE)).json()["Ticket"] for _ in range(2)
        ]
    clock.advance(59)
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        fresh = await client.get(f"/sso/qps/user?QLIKTICKET={tickets[0]}")
        clock.advance(2)
        client.cookies.clear()
        stale = await client.get(f"/sso/hub/?qlikTicket={tickets[1]}")
    assert fresh.json()["userId"] == "alice"
    assert stale.status_code == 302


async def test_ticket_of_another_vp_is_not_redeemed(clock: ManualClock) -> None:
    vps = [VirtualProxy(prefix="a", auth="ticket"), VirtualProxy(prefix="b", auth="ticket")]
    async with QlikSimulator(vps, clock=clock) as sim:
        async with api_client(sim) as api:
            path, headers = xrf("/qps/a/ticket")
            ticket = (await api.post(path, headers=headers, json=ALICE)).json()["Ticket"]
        async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
            response = await client.get(f"/b/hub/?qlikTicket={ticket}")
    assert response.status_code == 302


async def test_target_id_from_the_redirect_gives_target_uri(clock: ManualClock) -> None:
    vp = VirtualProxy(prefix="ext", auth="ticket", auth_module_redirect_uri="https://login.test/")
    async with QlikSimulator([vp], clock=clock) as sim:
        async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
            redirect = await client.get("/ext/sense/app/x?a=1")
        target_id = httpx.URL(redirect.headers["location"]).params["targetId"]
        async with api_client(sim) as api:
            path, headers = xrf("/qps/ext/ticket")
            body = (
                await api.post(path, headers=headers, json={**ALICE, "TargetId": target_id})
            ).json()
    assert body["TargetUri"] == f"{sim.proxy_url}/ext/sense/app/x?a=1"


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[]",
        b'{"UserDirectory": "ACME"}',
        b'{"UserDirectory": "   ", "UserId": "alice"}',
        b'{"UserDirectory": "ACME", "UserId": "al\\\\ice"}',
        b'{"UserDirectory": "AC\\\\ME", "UserId": "alice"}',
        b'{"UserDirectory": 1, "UserId": "alice"}',
        b'{"UserDirectory": "ACME", "UserId": "alice", "Attributes": "x"}',
        b'{"UserDirectory": "ACME", "UserId": "alice", "Attributes": [{"a": 1}]}',
        b'{"UserDirectory": "ACME", "UserId": "' + b"a" * 300 + b'"}',
    ],
)
async def test_bad_ticket_requests_are_400(sim: QlikSimulator, payload: bytes) -> None:
    async with api_client(sim) as api:
        path, headers = xrf("/qps/sso/ticket")
        response = await api.post(
            path, headers={**headers, "Content-Type": "application/json"}, content=payload
        )
    assert response.status_code == 400


async def test_unknown_prefix_is_404_and_default_vp_has_no_prefix(clock: ManualClock) -> None:
    async with QlikSimulator([VirtualProxy(prefix="")], clock=clock) as sim, api_client(sim) as api:
        path, headers = xrf("/qps/ticket")
        default = await api.post(path, headers=headers, json=ALICE)
        path, headers = xrf("/qps/nope/ticket")
        unknown = await api.post(path, headers=headers, json=ALICE)
    assert default.status_code == 201
    assert unknown.status_code == 404


async def test_session_api_create_get_delete_and_user_endpoints(sim: QlikSimulator) -> None:
    async with api_client(sim) as api:
        path, headers = xrf("/qps/sso/session")
        created = await api.post(
            path,
            headers=headers,
            json={**ALICE, "SessionId": "my-session-1", "Attributes": [{"role": "x"}]},
        )
        assert created.status_code == 201
        assert created.json()["SessionId"] == "my-session-1"
        async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
            user = await client.get(
                "/sso/qps/user", headers={"Cookie": "X-Qlik-Session-sso-HTTP=my-session-1"}
            )
        assert user.json()["userId"] == "alice"
        path, headers = xrf("/qps/sso/session/my-session-1")
        got = await api.get(path, headers=headers)
        path, headers = xrf("/qps/sso/user/ACME/alice")
        listed = await api.get(path, headers=headers)
        deleted = await api.delete(path, headers=headers)
        path, headers = xrf("/qps/sso/session/my-session-1")
        gone = await api.get(path, headers=headers)
        gone_delete = await api.delete(path, headers=headers)
        path, headers = xrf("/qps/sso/session")
        bad = await api.post(path, headers=headers, json={**ALICE, "SessionId": 5})
    assert got.json()["UserId"] == "alice"
    assert got.json()["Attributes"] == [{"role": "x"}]
    assert [s["SessionId"] for s in listed.json()] == ["my-session-1"]
    assert [s["SessionId"] for s in deleted.json()] == ["my-session-1"]
    assert gone.status_code == 404
    assert gone_delete.status_code == 404
    assert bad.status_code == 400
    assert sim.live_sessions() == []
    assert sim.logins(USER) == 1


async def test_api_latency_fault_delays_but_answers(sim: QlikSimulator) -> None:
    sim.faults.api_latency = 3600
    async with api_client(sim) as api:
        path, headers = xrf("/qps/sso/ticket?delayed=1")
        delayed = asyncio.create_task(api.post(path, headers=headers, json=ALICE))
        await eventually(lambda: any("delayed=1" in r.query for r in sim.requests))
        [record] = [r for r in sim.requests if "delayed=1" in r.query]
        assert record.status == 0
        assert not delayed.done()
        delayed.cancel()
        sim.faults.api_latency = 0
        path, headers = xrf("/qps/sso/ticket")
        ok = await api.post(path, headers=headers, json=ALICE)
    assert ok.status_code == 201


async def test_deeply_nested_json_is_400_not_a_crash(sim: QlikSimulator) -> None:
    async with api_client(sim) as api:
        path, headers = xrf("/qps/sso/ticket")
        response = await api.post(path, headers=headers, content=b"[" * 100_000)
        after = await api.post(path, headers=headers, json=ALICE)
    assert response.status_code == 400
    assert after.status_code == 201
