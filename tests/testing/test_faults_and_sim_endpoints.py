"""Fault injection and the test-only `content/_sim/*` endpoints, through real sockets."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest

from qlik_sso_middleware.testing import QlikSimulator

from ..waiting import eventually
from .conftest import USER, login


def _pattern(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


@pytest.fixture
async def client(sim: QlikSimulator) -> AsyncIterator[httpx.AsyncClient]:
    _, cookie, _ = await login(sim)
    async with httpx.AsyncClient(base_url=sim.proxy_url, headers={"Cookie": cookie}) as client:
        yield client


async def test_bytes_endpoint_streams_in_chunks(
    sim: QlikSimulator, client: httpx.AsyncClient
) -> None:
    size = 3 * 1024 * 1024 + 17
    digest = hashlib.sha256()
    received = 0
    chunks = 0
    url = f"/sso/content/_sim/bytes?size={size}&chunk=65536"
    async with client.stream("GET", url) as response:
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-length"] == str(size)
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            received += len(chunk)
            chunks += 1
    assert received == size
    assert digest.hexdigest() == hashlib.sha256(_pattern(size)).hexdigest()
    assert chunks > 1


async def test_bytes_endpoint_gzip(client: httpx.AsyncClient) -> None:
    response = await client.get("/sso/content/_sim/bytes?size=300000&chunk=70000&gzip=1")
    raw = b""
    async with client.stream("GET", "/sso/content/_sim/bytes?size=300000&gzip=1") as streamed:
        async for chunk in streamed.aiter_raw():
            raw += chunk
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == _pattern(300000)  # httpx decoded it
    assert gzip.decompress(raw) == _pattern(300000)


async def test_upload_reads_the_body_streaming(client: httpx.AsyncClient) -> None:
    body = _pattern(5 * 1024 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    put = await client.put("/sso/content/_sim/upload", content=chunks())
    post = await client.post("/sso/content/_sim/upload", content=b"abc")
    assert put.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert post.json()["size"] == 3


async def test_echo_reports_what_arrived(client: httpx.AsyncClient) -> None:
    response = await client.patch(
        "/sso/content/_sim/echo?x=1", content=b"12345", headers={"X-Test": "yes"}
    )
    echo = response.json()
    assert echo["method"] == "PATCH"
    assert echo["path"] == "/sso/content/_sim/echo"
    assert echo["query"] == "x=1"
    assert ["x-test", "yes"] in echo["headers"]
    assert echo["body_size"] == 5
    assert echo["user"] == USER
    assert "X-Qlik-Session-sso-HTTP" in echo["cookies"]


async def test_sse_events_arrive_one_by_one(client: httpx.AsyncClient) -> None:
    events = []
    url = "/sso/content/_sim/sse?count=4&interval=0.01"
    async with client.stream("GET", url) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:])["n"])
    assert events == [0, 1, 2, 3]


async def test_sse_is_not_buffered(client: httpx.AsyncClient) -> None:
    # The second event comes an hour later: the first must arrive on its own.
    async with client.stream("GET", "/sso/content/_sim/sse?count=2&interval=3600") as response:
        lines = response.aiter_lines()
        first = await asyncio.wait_for(anext(lines), 10)
    assert first == "id: 0"


async def test_redirect_location_uses_the_request_host(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/sso/content/_sim/redirect?to=/sso/hub/", headers={"Host": "front.test:9000"}
    )
    assert response.status_code == 302
    assert response.headers["location"] == "http://front.test:9000/sso/hub/"


async def test_sim_endpoints_need_a_session(sim: QlikSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        response = await client.get("/sso/content/_sim/bytes?size=10")
    assert response.status_code == 302


async def test_fail_next_answers_the_status_then_recovers(
    sim: QlikSimulator, client: httpx.AsyncClient
) -> None:
    sim.faults.fail_next(503, count=2, path_contains="/hub")
    other = await client.get("/sso/qps/user")
    first = await client.get("/sso/hub/")
    second = await client.get("/sso/hub/")
    third = await client.get("/sso/hub/")
    assert other.status_code == 200
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert [r.status for r in sim.requests[-3:]] == [503, 503, 200]


async def test_latency_fault_delays_answers(sim: QlikSimulator, client: httpx.AsyncClient) -> None:
    # Delay for an hour, then check the request arrived but is unanswered: no clock comparison.
    sim.faults.latency = 3600
    delayed = asyncio.create_task(client.get("/sso/hub/?delayed=1"))
    await eventually(lambda: any(r.query == "delayed=1" for r in sim.requests))
    [record] = [r for r in sim.requests if r.query == "delayed=1"]
    assert record.status == 0
    assert not delayed.done()
    delayed.cancel()
    sim.faults.latency = 0
    assert (await client.get("/sso/hub/")).status_code == 200


async def test_no_access_pass_page(sim: QlikSimulator) -> None:
    sim.faults.no_access_pass = True
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        response = await client.get("/sso/hub/", headers={"hdr-usr": USER})
    assert response.status_code == 403
    assert "You cannot access Qlik Sense because you have no access pass" in response.text
    assert sim.logins() == 0


async def test_restart_forgets_sessions(sim: QlikSimulator, client: httpx.AsyncClient) -> None:
    assert (await client.get("/sso/hub/")).status_code == 200
    sim.restart()
    after = await client.get("/sso/hub/")
    assert after.status_code == 302
    assert sim.live_sessions() == []
    assert sim.logins(USER) == 1


async def test_odd_query_values_fall_back_to_defaults(client: httpx.AsyncClient) -> None:
    nan = await client.get("/sso/content/_sim/bytes?size=nan&chunk=inf")
    text = await client.get("/sso/content/_sim/bytes?size=abc")
    head = await client.head("/sso/content/_sim/bytes?size=1000")
    hub_head = await client.head("/sso/hub/")
    assert (nan.status_code, nan.content) == (200, b"")
    assert (text.status_code, text.content) == (200, b"")
    assert head.headers["content-length"] == "1000"
    assert head.content == b""
    assert hub_head.status_code == 200


async def test_log_limit_keeps_the_log_bounded() -> None:
    async with (
        QlikSimulator(api=False, log_limit=10) as sim,
        httpx.AsyncClient(base_url=sim.proxy_url) as client,
    ):
        for index in range(30):
            await client.get(f"/sso/hub/?n={index}")
    assert 5 <= len(sim.requests) <= 10
    assert sim.requests[-1].query == "n=29"
