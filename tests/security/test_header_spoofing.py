"""Identity header spoofing: no spelling, repetition or framing of an identity header reaches Qlik.

Every case is sent byte for byte on a real socket; the assertion is on what the simulator
received. Where uvicorn's parser refuses a malformed request first (400), the outcome is still
safe: the spoofed value never reaches Qlik.
"""

from __future__ import annotations

import json

import pytest

from qlik_sso_middleware import ChainResolver, TrustedHeaderResolver
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..apps import build_app, cookie_resolver
from ..servers import serve
from .conftest import OFFLOAD_TARGETS
from .helpers import MALLORY, Stack, assert_never_reached, raw_http, raw_websocket

pytestmark = pytest.mark.asyncio(loop_scope="module")
TARGETS = OFFLOAD_TARGETS

ECHO = "/sso/content/_sim/echo"
ENGINE = f"/sso/app/{DEMO_APPS[0].id}"

#: The VP's identity header in every spelling a server might fold together, and the headers Qlik
#: reserves for itself or treats as credentials / proxy claims.
NAMES = [
    "hdr-usr",
    "HDR-USR",
    "Hdr-Usr",
    "hDr-uSr",
    "hdr_usr",
    "HDR_USR",
    "hdr_Usr",
    "X-Qlik-User",
    "x_qlik_user",
    "X-QLIK-USER",
    "X-Qlik-Security",
    "X-Qlik-ProxySession",
    "x-qlik-proxysession",
    "X-Qlik-ProxyId",
    "X-Qlik-Session",
    "Authorization",
    "Proxy-Authorization",
    "Forwarded",
    "X-Forwarded-Host",
    "X-Forwarded-User",
    "X_Forwarded_User",
    "X-Real-IP",
]


def forms(name: str) -> dict[str, tuple[list[tuple[str, str]], bytes]]:
    """Ways to send `name: MALLORY`: (headers, raw bytes appended to the header block)."""
    return {
        "single": ([(name, MALLORY)], b""),
        "duplicate": ([(name, MALLORY), (name, "ACME\\root")], b""),
        "empty-then-value": ([(name, ""), (name, MALLORY)], b""),
        "value-then-empty": ([(name, MALLORY), (name, "")], b""),
        "obs-fold": ([], f"{name}: ACME\r\n \\mallory\r\n".encode()),
        "obs-fold-after-other": ([], f"X-Other: a\r\n {name}: {MALLORY}\r\n".encode()),
        "bare-cr": ([], f"X-Other: a\r{name}: {MALLORY}\r\n".encode()),
        "bare-lf": ([], f"X-Other: a\n{name}: {MALLORY}\r\n".encode()),
        "leading-space-name": ([], f" {name}: {MALLORY}\r\n".encode()),
        "space-before-colon": ([], f"{name} : {MALLORY}\r\n".encode()),
    }


CASES = [(n, f) for n in NAMES for f in forms(n)]


def assert_alice_only(stack: Stack) -> None:
    assert_never_reached(stack.sim, "mallory", "ACME\\root")
    for record in stack.proxied():
        # Whatever reached Qlik carried exactly the identity the middleware vouches for. A front
        # proxy (offload) sends no identity header at all, only the session the app logged in.
        # (The app's own calls and the round trips through it still carry the header.)
        vouched = ([], ["ACME\\alice"]) if stack.offload else (["ACME\\alice"],)
        assert record.header("hdr-usr") in vouched
        assert record.user in (None, "ACME\\alice")


@pytest.mark.parametrize(("name", "form"), CASES)
async def test_http_spoof_on_allowed_path(stack: Stack, name: str, form: str) -> None:
    headers, raw = forms(name)[form]
    response = await raw_http(stack, "GET", ECHO, headers, raw_header_block=raw)
    assert response.status in (200, 400)
    if response.status == 200:
        echoed = response.json()
        assert isinstance(echoed, dict)
        assert echoed["user"] == "ACME\\alice"
    assert_alice_only(stack)


@pytest.mark.parametrize(("name", "form"), CASES)
async def test_websocket_spoof_on_the_upgrade(stack: Stack, name: str, form: str) -> None:
    headers, raw = forms(name)[form]
    upgrade = await raw_websocket(stack, ENGINE, headers, raw_header_block=raw)
    if upgrade.status == 101 and upgrade.first_text is not None:
        auth = json.loads(upgrade.first_text)
        assert auth["method"] == "OnAuthenticationInformation"
        assert (auth["params"]["userDirectory"], auth["params"]["userId"]) == ("ACME", "alice")
    else:
        # Refused by the HTTP parser or the middleware: never a Qlik socket for someone else.
        assert upgrade.status in (400, 403, None) or upgrade.close_code is not None
    assert_alice_only(stack)


@pytest.mark.parametrize("name", ["hdr-usr", "hdr_usr", "X-Qlik-User", "Authorization"])
@pytest.mark.parametrize(
    ("path", "user", "status"),
    [
        ("/sso/qrs/about", "alice", 403),  # blocked surface
        ("/sso/../qrs/about", "alice", 400),  # path trick
        ("/sso/hub/", None, 401),  # no logged-in app user
    ],
)
async def test_http_spoof_on_refused_paths_reaches_nothing(
    stack: Stack, name: str, path: str, user: str | None, status: int
) -> None:
    response = await raw_http(stack, "GET", path, [(name, MALLORY)], user=user)
    assert response.status == status
    assert stack.sim.requests == []


@pytest.mark.parametrize("name", ["hdr-usr", "hdr_usr", "X-Qlik-User", "Authorization"])
async def test_http_spoof_on_qlik_error_path(stack: Stack, name: str) -> None:
    await raw_http(stack, "GET", "/sso/qps/user")  # logged in first
    stack.sim.clear_log()
    stack.sim.faults.fail_next(500, path_contains="_sim/echo")
    response = await raw_http(stack, "GET", ECHO, [(name, MALLORY)])
    assert response.status == 500  # Qlik's own error page, relayed
    assert len(stack.proxied()) == 1
    assert_alice_only(stack)


@pytest.mark.parametrize("name", ["hdr-usr", "hdr_usr", "X-Qlik-User"])
async def test_websocket_spoof_without_a_user_reaches_nothing(stack: Stack, name: str) -> None:
    upgrade = await raw_websocket(stack, ENGINE, [(name, MALLORY)], user=None)
    assert upgrade.close_code == 1008
    assert stack.sim.requests == []


@pytest.mark.parametrize("name", ["hdr-usr", "X-Qlik-User"])
async def test_websocket_spoof_with_foreign_origin_reaches_nothing(stack: Stack, name: str) -> None:
    upgrade = await raw_websocket(stack, ENGINE, [(name, MALLORY)], origin="https://evil.example")
    assert upgrade.status == 403
    assert stack.sim.requests == []


async def test_connection_header_cannot_unstrip_or_hide_the_identity_header(stack: Stack) -> None:
    # Hop-by-hop tricks: naming our own identity header as hop-by-hop must not remove it.
    response = await raw_http(
        stack, "GET", ECHO, [("Connection", "close, hdr-usr, cookie, host"), ("hdr-usr", MALLORY)]
    )
    assert response.status == 200
    assert_alice_only(stack)
    record = stack.proxied()[-1]
    assert record.header("host") == [stack.host]
    assert set(record.cookies) == {"X-Qlik-Session-sso-HTTP"}


@pytest.mark.parametrize("chained", [False, True])
async def test_authenticating_proxy_header_never_reaches_qlik(chained: bool) -> None:
    """The header an upstream authenticating proxy sets (TrustedHeaderResolver) is for us only."""
    trusted = TrustedHeaderResolver("X-Remote-User", user_directory="ACME")
    resolver = ChainResolver([trusted, cookie_resolver]) if chained else trusted
    async with QlikSimulator([VirtualProxy(prefix="sso")], api=False) as sim:
        app, sso = build_app(sim, resolver=resolver)
        async with serve(app) as url:
            stack = Stack(sim, url, sso)
            response = await raw_http(
                stack,
                "GET",
                ECHO,
                [("X-Remote-User", "alice"), ("X_Remote_User", "mallory")],
                user=None,
            )
            upgrade = await raw_websocket(stack, ENGINE, [("X-Remote-User", "alice")], user=None)
    assert response.status == 200
    assert upgrade.status == 101
    for record in stack.proxied():
        assert record.header("x-remote-user") == [] and record.header("x_remote_user") == []
        assert record.header("hdr-usr") == ["ACME\\alice"]


@pytest.mark.parametrize("name", ["X-Qlik-Xrfkey", "x-qlik-xrfkey", "X_Qlik_Xrfkey"])
async def test_a_well_formed_xrfkey_pair_is_stripped_too(stack: Stack, name: str) -> None:
    """No `X-Qlik-*` from a browser, ever (qlik-behaviour.md), not even the harmless-looking
    anti-CSRF key: browser calls to QRS through the proxy stay unsupported by design."""
    key = "abcdefghij012345"
    response = await raw_http(stack, "GET", f"{ECHO}?xrfkey={key}", [(name, key)])
    assert response.status == 200
    echoed = response.json()
    assert isinstance(echoed, dict)
    assert [
        k for k, _ in echoed["headers"] if k.lower().replace("_", "-").startswith("x-qlik-")
    ] == []
    assert_alice_only(stack)
