"""`X-Qlik-Xrfkey` from the browser: the one `X-Qlik-*` header forwarded, and only when well-formed.

Qlik's hub, QMC and mashups call `/<prefix>/qrs/...?xrfkey=<key>` with the same key in
`X-Qlik-Xrfkey`; Qlik answers 403 "XSRF prevention check failed" without the pair. The policy tests
are pure; the end-to-end tests go through `QlikSSOMiddleware` to the simulator, which checks the
pair as Qlik does, on both HTTP engines and on the WebSocket upgrade.
"""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.asyncio.client import connect

from qlik_sso_middleware.proxy.headers import RequestHeaderPolicy
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator
from qlik_sso_middleware.testing.content import XRF_FAILED

from ..apps import build_app
from ..servers import serve

KEY = "abcdefGHIJ012345"
OTHER = "ZYXWVUTSRQ987654"

Headers = list[tuple[bytes, bytes]]


def forwarded(policy: RequestHeaderPolicy, headers: Headers) -> Headers:
    """The browser headers that reached Qlik (host and the middleware's own additions removed)."""
    out = policy.upstream_headers(
        headers,
        host=b"app.example",
        added=[(b"hdr-usr", b"ACME\\alice")],
        session_cookie=None,
        forwarded_for=b"10.0.0.1",
        forwarded_proto=b"https",
    )
    ours = {b"host", b"hdr-usr", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
    return [(k, v) for k, v in out if k not in ours]


@pytest.mark.parametrize("name", [b"X-Qlik-Xrfkey", b"x-qlik-xrfkey", b"X-QLIK-XRFKEY"])
def test_a_well_formed_xrfkey_is_forwarded_once_in_any_case(name: bytes) -> None:
    policy = RequestHeaderPolicy.build(["hdr-usr"])
    for _ in range(2):  # the second round runs on cached verdicts
        got = forwarded(policy, [(b"accept", b"*/*"), (name, KEY.encode())])
        assert got == [(b"accept", b"*/*"), (b"x-qlik-xrfkey", KEY.encode())]


DROPPED: dict[str, Headers] = {
    "15 chars": [(b"X-Qlik-Xrfkey", KEY[:-1].encode())],
    "17 chars": [(b"X-Qlik-Xrfkey", KEY.encode() + b"x")],
    "empty": [(b"X-Qlik-Xrfkey", b"")],
    "space": [(b"X-Qlik-Xrfkey", b"abcdefGH IJ012345")],
    "comma": [(b"X-Qlik-Xrfkey", KEY.encode() + b", ACME\\mallory")],
    "crlf": [(b"X-Qlik-Xrfkey", KEY.encode() + b"\r\nX-Qlik-User: ACME\\mallory")],
    "lf": [(b"X-Qlik-Xrfkey", KEY.encode() + b"\n")],
    "dash": [(b"X-Qlik-Xrfkey", b"abcdefGHIJ-12345")],
    "non-ascii": [(b"X-Qlik-Xrfkey", "abcdefGHIJ01234é".encode())],
    "duplicate same": [(b"X-Qlik-Xrfkey", KEY.encode()), (b"x-qlik-xrfkey", KEY.encode())],
    "duplicate other": [(b"X-Qlik-Xrfkey", KEY.encode()), (b"X-Qlik-Xrfkey", OTHER.encode())],
    "underscore": [(b"X_Qlik_Xrfkey", KEY.encode())],
    "underscore and dash": [(b"x_qlik_xrfkey", OTHER.encode()), (b"X-Qlik-Xrfkey", KEY.encode())],
    "named in Connection": [(b"Connection", b"x-qlik-xrfkey"), (b"X-Qlik-Xrfkey", KEY.encode())],
}


@pytest.mark.parametrize("case", DROPPED)
def test_a_malformed_repeated_or_odd_xrfkey_is_dropped(case: str) -> None:
    policy = RequestHeaderPolicy.build(["hdr-usr"])
    for _ in range(2):
        assert forwarded(policy, DROPPED[case]) == []


@pytest.mark.parametrize(
    "name",
    [
        b"X-Qlik-User",
        b"X-Qlik-Security",
        b"X-Qlik-Session",
        b"X-Qlik-Xrfkeys",
        b"X-Qlik-Xrf",
        b"X-Qlik-Xrfkey-User",
        b"X-Qlik-Xrfkey2",
    ],
)
def test_every_other_qlik_header_is_stripped_even_with_a_key_shaped_value(name: bytes) -> None:
    policy = RequestHeaderPolicy.build(["hdr-usr"])
    assert forwarded(policy, [(name, KEY.encode())]) == []


def test_an_identity_header_named_like_the_xrfkey_is_stripped() -> None:
    policy = RequestHeaderPolicy.build(["X-Qlik-Xrfkey"])
    assert forwarded(policy, [(b"X-Qlik-Xrfkey", KEY.encode())]) == []


# -- end to end: browser → middleware → simulator ----------------------------------------------------


@pytest.fixture(params=["reqwest", "aiohttp"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def qrs_about(
    simulator: QlikSimulator, engine: str, query_key: str, headers: list[tuple[str, str]]
) -> httpx.Response:
    app, _ = build_app(simulator, target={"http_engine": engine, "allowed_paths": ["qrs/"]})
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"app_user": "alice"}) as client,
    ):
        return await client.get(
            f"/sso/qrs/about?xrfkey={query_key}",
            headers=[("sec-fetch-site", "same-origin"), *headers],
        )


def qrs_record(simulator: QlikSimulator) -> list[str]:
    """The `X-Qlik-Xrfkey` values Qlik received on the one QRS call, which ran as alice."""
    records = [r for r in simulator.requests if r.port == "proxy" and "/qrs/" in r.path]
    assert len(records) == 1
    assert records[0].header("hdr-usr") == ["ACME\\alice"]
    return records[0].header("x-qlik-xrfkey")


async def test_qrs_with_the_xrfkey_pair_gets_qliks_answer(
    simulator: QlikSimulator, engine: str
) -> None:
    response = await qrs_about(simulator, engine, KEY, [("X-Qlik-Xrfkey", KEY)])
    assert response.status_code == 200
    assert response.json()["buildVersion"]
    assert qrs_record(simulator) == [KEY]


@pytest.mark.parametrize(
    ("query_key", "headers", "reached"),
    [
        (KEY, [], []),  # no header
        (KEY, [("X-Qlik-Xrfkey", OTHER)], [OTHER]),  # mismatch: Qlik's check refuses it
        (KEY, [("X-Qlik-Xrfkey", KEY), ("X-Qlik-Xrfkey", KEY)], []),  # twice: dropped
        (KEY, [("X_Qlik_Xrfkey", KEY)], []),  # `_` spelling: dropped
        (f"{KEY}%2C", [("X-Qlik-Xrfkey", f"{KEY},")], []),  # malformed: dropped
    ],
    ids=["missing", "mismatch", "duplicate", "underscore", "malformed"],
)
async def test_qrs_without_a_good_xrfkey_pair_gets_qliks_403(
    simulator: QlikSimulator,
    engine: str,
    query_key: str,
    headers: list[tuple[str, str]],
    reached: list[str],
) -> None:
    response = await qrs_about(simulator, engine, query_key, headers)
    assert response.status_code == 403
    assert response.text == XRF_FAILED  # Qlik's refusal, not the middleware's
    assert qrs_record(simulator) == reached


def ws_url(base: str, path: str) -> str:
    return "ws" + base[len("http") :] + path


@pytest.mark.parametrize(("sent", "reached"), [(KEY, [KEY]), (KEY + "\t1", [])])
async def test_websocket_upgrade_applies_the_same_rule(
    simulator: QlikSimulator, sent: str, reached: list[str]
) -> None:
    app, _ = build_app(simulator)
    async with (
        serve(app) as url,
        connect(
            ws_url(url, f"/sso/app/{DEMO_APPS[0].id}"),
            origin=url,  # type: ignore[arg-type]
            additional_headers=[("cookie", "app_user=alice"), ("X-Qlik-Xrfkey", sent)],
        ) as ws,
    ):
        auth = json.loads(await ws.recv())
        assert auth["params"]["userId"] == "alice"
    handshake = next(r for r in simulator.requests if r.websocket)
    assert handshake.header("x-qlik-xrfkey") == reached
    assert handshake.header("hdr-usr") == ["ACME\\alice"]
