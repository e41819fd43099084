"""Plain WSGI: mount paths through the async core on its own loop, the rest straight to the app."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx2 as httpx
import pytest

from qlik_sso_middleware import QlikIdentity, QlikTarget
from qlik_sso_middleware.integrations.wsgi import QlikWSGIMiddleware
from qlik_sso_middleware.testing import QlikSimulator


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class RecordingApp:
    """A WSGI app that notes which thread served it and whether it saw the core."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.seen.append(
            (environ["PATH_INFO"], threading.current_thread().name, "qlik_sso" in environ)
        )
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wsgi app"]


def cookie_user(conn: Any) -> QlikIdentity | None:
    user = conn.cookies.get("user")
    return QlikIdentity("ACME", user) if user else None


@pytest.fixture
async def served(
    simulator: QlikSimulator,
) -> AsyncIterator[tuple[str, QlikWSGIMiddleware, RecordingApp]]:
    app = RecordingApp()
    middleware = QlikWSGIMiddleware(
        app, target=QlikTarget(simulator.proxy_url), resolver=cookie_user
    )
    server = make_server("127.0.0.1", 0, middleware, handler_class=_Quiet)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgi-server"
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", middleware, app
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        middleware.close()
        middleware.close()  # idempotent


async def test_mount_paths_reach_qlik_as_the_user_and_the_rest_reaches_the_app(
    served: tuple[str, QlikWSGIMiddleware, RecordingApp], simulator: QlikSimulator
) -> None:
    url, middleware, app = served
    async with httpx.AsyncClient(base_url=url, cookies={"user": "alice"}, timeout=30) as client:
        assert (await client.get("/hello")).text == "wsgi app"
        me = (await client.get("/sso/qps/user")).json()
        assert (me["userDirectory"], me["userId"]) == ("ACME", "alice")
        upload = await client.post(
            "/sso/content/_sim/echo", content=b"x" * 100_000, headers={"origin": url}
        )
        assert upload.status_code == 200
    # Only the non-mount request reached the app, on the server's thread, with the core at hand.
    assert app.seen == [("/hello", "wsgi-server", True)]
    forwarded = [r for r in simulator.requests if r.path == "/sso/qps/user"]
    assert forwarded and all(r.header("hdr-usr") == ["ACME\\alice"] for r in forwarded)
    # The browser's request (after the login request) names the WSGI peer.
    assert forwarded[-1].header("x-forwarded-for") == ["127.0.0.1"]
    # The sync logout runs on the core's loop (called from a thread, as a WSGI view would; the
    # simulator lives in this test's loop, which must stay free).
    dropped = await asyncio.to_thread(middleware.logout, QlikIdentity("ACME", "alice"))
    assert dropped == 1
    assert simulator.live_sessions("ACME\\alice") == []


async def test_no_user_and_websocket_upgrades_get_clear_answers(
    served: tuple[str, QlikWSGIMiddleware, RecordingApp], simulator: QlikSimulator
) -> None:
    url, _, app = served
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        anonymous = await client.get("/sso/hub/", headers={"accept": "application/json"})
        assert anonymous.status_code == 401
        upgrade = await client.get(
            "/sso/app/engineData",
            headers={
                "connection": "Upgrade",
                "upgrade": "websocket",
                "accept": "text/html",
                "cookie": "user=alice",
            },
        )
    assert upgrade.status_code == 501
    assert "WebSockets need ASGI" in upgrade.text
    assert "uvicorn" in upgrade.text
    assert simulator.requests == []
    assert app.seen == []


def test_raw_uri_is_what_the_core_checks(simulator: QlikSimulator) -> None:
    # PATH_INFO arrives decoded; the encoded separator is only visible in RAW_URI.
    middleware = QlikWSGIMiddleware(
        RecordingApp(), target=QlikTarget(simulator.proxy_url), resolver=cookie_user
    )
    status: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/sso/content/a/b",
        "RAW_URI": "/sso/content/a%2fb",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_COOKIE": "user=alice",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
    }
    try:
        body = b"".join(middleware(environ, lambda s, h, e=None: status.append(s)))  # type: ignore[arg-type]
    finally:
        middleware.close()
    assert status == ["400 Bad Request"]
    assert b"encoded" in body
