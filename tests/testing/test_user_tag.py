"""`QlikSimulator(tag_user=True)`: every answer and engine frame names the user it served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from websockets.asyncio.client import connect

from qlik_sso_middleware.testing import USER_TAG_FIELD, USER_TAG_HEADER, QlikSimulator

from .conftest import APP, login, recv_json, rpc, ws_url


@pytest.fixture
async def tagging() -> AsyncIterator[QlikSimulator]:
    async with QlikSimulator(tag_user=True) as simulator:
        yield simulator


async def test_http_answers_on_a_session_name_its_user(tagging: QlikSimulator) -> None:
    _, alice, _ = await login(tagging, "ACME\\alice")
    _, bob, _ = await login(tagging, "ACME\\bob")
    async with httpx.AsyncClient(base_url=tagging.proxy_url) as client:
        for cookie, user in ((alice, "ACME\\alice"), (bob, "ACME\\bob")):
            for path in ("/sso/hub/", "/sso/qps/user", "/sso/content/_sim/echo"):
                answer = await client.get(path, headers={"cookie": cookie})
                assert answer.headers[USER_TAG_HEADER] == user, path
        # No session, no tag: the login redirect and an injected failure ran as nobody.
        anonymous = await client.get("/sso/hub/")
        tagging.faults.fail_next(503)
        failed = await client.get("/sso/hub/", headers={"cookie": alice})
    assert anonymous.status_code == 302
    assert USER_TAG_HEADER not in anonymous.headers
    assert failed.status_code == 503
    assert USER_TAG_HEADER not in failed.headers


async def test_engine_frames_name_their_user_and_the_echo_socket_is_left_alone(
    tagging: QlikSimulator,
) -> None:
    _, cookie, token = await login(tagging, "ACME\\bob")
    headers = {"cookie": cookie}
    async with connect(
        ws_url(tagging, f"/sso/app/{APP}?qlik-csrf-token={token}"), additional_headers=headers
    ) as ws:
        notices = [await recv_json(ws), await recv_json(ws)]
        answer = await rpc(ws, 1, "OpenDoc", -1, APP)
        error = await rpc(ws, 2, "NoSuchMethod", -1)
    assert [n["method"] for n in notices] == ["OnAuthenticationInformation", "OnConnected"]
    for frame in (*notices, answer, error):
        assert frame[USER_TAG_FIELD] == "ACME\\bob"
    assert answer["result"]["qReturn"]["qHandle"] == 1  # the answer itself is untouched
    async with connect(
        ws_url(tagging, f"/sso/app/_sim_echo?qlik-csrf-token={token}"), additional_headers=headers
    ) as echo:
        await echo.send('{"mine": true}')
        assert await asyncio.wait_for(echo.recv(), 10) == '{"mine": true}'


async def test_nothing_is_tagged_by_default(sim: QlikSimulator) -> None:
    _, cookie, token = await login(sim)
    async with httpx.AsyncClient(base_url=sim.proxy_url) as client:
        answer = await client.get("/sso/hub/", headers={"cookie": cookie})
    async with connect(
        ws_url(sim, f"/sso/app/{APP}?qlik-csrf-token={token}"),
        additional_headers={"cookie": cookie},
    ) as ws:
        first = await recv_json(ws)
    assert USER_TAG_HEADER not in answer.headers
    assert USER_TAG_FIELD not in first
