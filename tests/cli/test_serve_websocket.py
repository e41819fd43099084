"""`qlik-sso serve` relays the app's own WebSockets: a real Starlette app on uvicorn behind the real
serve app on uvicorn, driven by a real websockets client (the "browser")."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from qlik_sso_middleware.config import load_config
from qlik_sso_middleware.serve.app import build_serve_app
from qlik_sso_middleware.serve.handoff import Handoff
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator
from tests.cli.test_serve import ALICE, KEY, config_text
from tests.servers import free_port, serve

MIB = 1024 * 1024


@dataclass
class AppSide:
    """What the app saw: handshake headers per socket and how the browser closed."""

    handshakes: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    closes: asyncio.Queue[tuple[int, str]] = field(default_factory=asyncio.Queue)
    expected_origin: str = ""


def make_app(side: AppSide) -> Starlette:
    async def echo(ws: WebSocket) -> None:
        side.handshakes.append(list(ws.scope["headers"]))
        offered = ws.scope.get("subprotocols") or []
        await ws.accept(subprotocol="v2.echo" if "v2.echo" in offered else None)
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                await side.closes.put((message.get("code", 1000), message.get("reason") or ""))
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])

    async def guarded(ws: WebSocket) -> None:
        side.handshakes.append(list(ws.scope["headers"]))
        if (
            ws.cookies.get("app_session") != "s1"
            or ws.headers.get("origin") != side.expected_origin
        ):
            await ws.close(1008)  # before accept: uvicorn answers the handshake with 403
            return
        await ws.accept()
        await ws.send_json(
            {
                "cookies": dict(ws.cookies),
                "origin": ws.headers.get("origin"),
                "host": ws.headers.get("host"),
                "forwarded": [ws.headers.get(f"x-forwarded-{h}") for h in ("host", "proto", "for")],
                "user_agent": ws.headers.get("user-agent"),
                "path": ws.url.path,
                "query": ws.url.query,
            }
        )
        with pytest.raises(WebSocketDisconnect):
            await ws.receive_text()

    async def closer(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("bye soon")
        await ws.close(4321, "app says bye")

    return Starlette(
        routes=[
            WebSocketRoute("/ws/echo", echo),
            WebSocketRoute("/ws/guarded", guarded),
            WebSocketRoute("/ws/closer", closer),
        ]
    )


@pytest.fixture
async def app_side() -> AsyncIterator[tuple[AppSide, str]]:
    side = AppSide()
    async with serve(make_app(side)) as url:
        yield side, url


def proxy_for(tmp_path: Path, simulator: QlikSimulator, upstream: str) -> ASGIApp:
    path = tmp_path / "serve.toml"
    path.write_text(config_text(simulator, upstream))
    return build_serve_app(load_config(path, {}))


async def signed_in(url: str) -> str:
    """The proxy's own session cookie after a handoff (what a signed-in browser carries)."""
    async with httpx.AsyncClient(base_url=url) as client:
        landed = await client.get(
            "/_qlik_sso/handoff", params={"token": Handoff([KEY]).issue(ALICE)}
        )
        assert landed.status_code == 303
        cookie = client.cookies.get("qlik_sso_session")
    assert cookie
    return cookie


def browser(url: str, path: str, **options: object) -> connect:
    return connect(url.replace("http://", "ws://") + path, max_size=None, **options)  # type: ignore[arg-type]


async def test_echo_text_bytes_large_and_subprotocol(
    tmp_path: Path, simulator: QlikSimulator, app_side: tuple[AppSide, str]
) -> None:
    side, app_url = app_side
    async with serve(proxy_for(tmp_path, simulator, app_url)) as url:
        ws: ClientConnection
        async with browser(url, "/ws/echo", subprotocols=["v1.echo", "v2.echo"]) as ws:
            assert ws.subprotocol == "v2.echo"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01\xff")
            assert await ws.recv() == b"\x00\x01\xff"
            await ws.send("")
            assert await ws.recv() == ""
            big = bytes(range(256)) * (5 * MIB // 256)
            await ws.send(big)
            assert await ws.recv() == big
            big_text = "ü" * (5 * MIB // 2)
            await ws.send(big_text)
            assert await ws.recv() == big_text
            # Both directions at once: several frames in flight before any answer is read.
            for i in range(20):
                await ws.send(f"m{i}")
            assert [await ws.recv() for _ in range(20)] == [f"m{i}" for i in range(20)]
        assert await asyncio.wait_for(side.closes.get(), 10) == (1000, "")

        # No subprotocol offered: none chosen, and the app saw one clean handshake.
        async with browser(url, "/ws/echo") as ws:
            assert ws.subprotocol is None
            await ws.send("x")
            assert await ws.recv() == "x"
        names = [k for k, _ in side.handshakes[-1]]
        for unique in (b"host", b"sec-websocket-key", b"upgrade", b"connection", b"origin"):
            assert names.count(unique) <= 1, unique
        assert b"sec-websocket-extensions" not in names


async def test_cookies_origin_and_forwarded_headers(
    tmp_path: Path,
    simulator: QlikSimulator,
    app_side: tuple[AppSide, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    side, app_url = app_side
    async with serve(proxy_for(tmp_path, simulator, app_url)) as url:
        side.expected_origin = url
        own = await signed_in(url)
        cookie = f"qlik_sso_session={own}; app_session=s1; theme=dark"
        headers = {"cookie": cookie, "user-agent": "test-browser/1.0"}
        async with browser(
            url, "/ws/guarded?room=7&x=%2F", origin=url, additional_headers=headers
        ) as ws:
            seen = json.loads(await ws.recv())
        assert seen["cookies"] == {"app_session": "s1", "theme": "dark"}
        assert seen["origin"] == url
        assert seen["host"] == app_url.removeprefix("http://")
        assert seen["forwarded"] == [url.removeprefix("http://"), "http", "127.0.0.1"]
        assert seen["user_agent"] == "test-browser/1.0"
        assert (seen["path"], seen["query"]) == ("/ws/guarded", "room=7&x=%2F")
        assert all(own not in v.decode("latin-1") for _, v in side.handshakes[-1])

        # The app's own checks refuse the browser: its 403 reaches the browser's handshake.
        for origin, sent in ((url, "app_session=wrong"), ("http://evil.example", "app_session=s1")):
            with pytest.raises(InvalidStatus) as refused:
                async with browser(
                    url, "/ws/guarded", origin=origin, additional_headers={"cookie": sent}
                ):
                    pass
            assert refused.value.response.status_code == 403

        # The Qlik engine socket still goes to Qlik, next to the app's sockets.
        engine = f"/sso/app/{DEMO_APPS[0].id}"
        async with browser(
            url, engine, origin=url, additional_headers={"cookie": f"qlik_sso_session={own}"}
        ) as ws:
            assert json.loads(await ws.recv())["params"]["userId"] == "alice"
        # The relay's client never logs the handshake (the user's cookies for the app).
        ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("qlik_sso"))
        assert own not in ours and "app_session" not in ours


async def test_close_codes_both_ways(
    tmp_path: Path,
    simulator: QlikSimulator,
    app_side: tuple[AppSide, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    side, app_url = app_side
    async with serve(proxy_for(tmp_path, simulator, app_url)) as url:
        async with browser(url, "/ws/closer") as ws:
            assert await ws.recv() == "bye soon"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 4321
        assert ws.close_reason == "app says bye"

        async with browser(url, "/ws/echo") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            await ws.close(4001, "browser says bye")
        assert await asyncio.wait_for(side.closes.get(), 10) == (4001, "browser says bye")

        # A browser that drops the TCP connection without a close frame (uvicorn reports the
        # reserved 1005): the app gets a close frame with a code that may go on the wire.
        async with browser(url, "/ws/echo") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            ws.transport.abort()
        assert await asyncio.wait_for(side.closes.get(), 10) == (1000, "")
        # ...without the relay failing on the way (a reserved code raises in the client).
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_app_refusing_or_down(
    tmp_path: Path, simulator: QlikSimulator, app_side: tuple[AppSide, str]
) -> None:
    _, app_url = app_side
    async with serve(proxy_for(tmp_path, simulator, app_url)) as url:
        with pytest.raises(InvalidStatus) as refused:
            async with browser(url, "/ws/no-such-route"):
                pass
        assert refused.value.response.status_code == 403

    down = f"http://127.0.0.1:{free_port()}"
    async with serve(proxy_for(tmp_path, simulator, down)) as url:
        with pytest.raises(InvalidStatus) as refused:
            async with browser(url, "/ws/echo"):
                pass
        assert refused.value.response.status_code == 502
        assert refused.value.response.body == b"The application is not available"
        # HTTP answers the same way, and the proxy keeps serving.
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/page")).status_code == 502
            assert (await client.get("/_qlik_sso/health")).status_code == 200


async def test_refusal_without_the_http_response_extension(
    tmp_path: Path, simulator: QlikSimulator, app_side: tuple[AppSide, str]
) -> None:
    """Servers without `websocket.http.response`: the refusal is a close before the accept."""
    _, app_url = app_side
    for upstream, works in ((app_url, True), (f"http://127.0.0.1:{free_port()}", False)):
        proxy = proxy_for(tmp_path, simulator, upstream)

        async def plain_server(
            scope: Scope, receive: Receive, send: Send, app: ASGIApp = proxy
        ) -> None:
            if scope["type"] == "websocket":
                scope = {**scope, "extensions": {}}
            await app(scope, receive, send)

        async with serve(plain_server) as url:
            with pytest.raises(InvalidStatus) as refused:
                async with browser(url, "/ws/no-such-route" if works else "/ws/echo"):
                    pass
            assert refused.value.response.status_code == 403
            if works:
                async with browser(url, "/ws/echo") as ws:
                    await ws.send("still relayed")
                    assert await ws.recv() == "still relayed"
