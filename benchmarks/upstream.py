"""A minimal Qlik-shaped upstream: the baseline every ratio is measured against.

Plain ASGI on uvicorn, so the direct baseline is as cheap as a Python server gets and the ratios show
the proxy's cost, not the upstream's. It answers just what the middleware needs:

- `GET /sso/qps/user` with the `hdr-usr` header: a new `X-Qlik-Session-sso-HTTP` cookie (a header
  virtual proxy's login), the JSON Qlik answers;
- `GET /sso/qps/csrftoken`: a `qlik-csrf-token` header (Qlik's November 2024 WebSocket rule);
- `GET /sso/content/_sim/bytes?size=N`: N bytes (one body up to 1 MiB, streamed in 64 KiB chunks
  beyond), the same paths as the simulator's `content/_sim/bytes`;
- `POST /sso/content/_sim/upload`: reads and counts the body;
- WebSocket `/sso/app/_sim_echo`: echoes every message as it came (text or bytes).

Run: `uvicorn benchmarks.upstream:app --ws websockets-sansio --ws-max-size 268435456`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

Scope = dict[str, Any]

_CHUNK = 64 * 1024
_PATTERN = bytes(range(256)) * (_CHUNK // 256)
_SMALL_BODIES: dict[int, bytes] = {}
_COOKIE = "X-Qlik-Session-sso-HTTP"


def _size(query: bytes) -> int:
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if name == b"size" and value.isdigit():
            return int(value)
    return 0


async def _reply(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _bytes(query: bytes, send: Any) -> None:
    size = _size(query)
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(size).encode()),
    ]
    if size <= 1024 * 1024:
        body = _SMALL_BODIES.get(size)
        if body is None:
            body = _SMALL_BODIES[size] = (_PATTERN * (size // len(_PATTERN) + 1))[:size]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    left = size
    while left > 0:
        n = min(left, _CHUNK)
        left -= n
        chunk = _PATTERN if n == _CHUNK else _PATTERN[:n]
        await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})


async def _upload(receive: Any, send: Any) -> None:
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await _reply(send, 200, b'{"size":%d}' % size, [(b"content-type", b"application/json")])


async def _login(scope: Scope, send: Any) -> None:
    user = next((v for k, v in scope["headers"] if k == b"hdr-usr"), None)
    if user is None:
        await _reply(send, 200, b'{"session":"inactive"}', [(b"content-type", b"application/json")])
        return
    directory, _, uid = user.decode("latin-1").partition("\\")
    body = json.dumps({"userDirectory": directory, "userId": uid, "session": "active"}).encode()
    cookie = f"{_COOKIE}={secrets.token_hex(16)}; Path=/; HttpOnly".encode()
    headers = [(b"content-type", b"application/json"), (b"set-cookie", cookie)]
    await _reply(send, 200, body, headers)


async def _echo_socket(receive: Any, send: Any) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if kind == "websocket":
        if path == "/sso/app/_sim_echo":
            await _echo_socket(receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/sso/content/_sim/bytes":
        await _bytes(scope.get("query_string", b""), send)
    elif path == "/sso/content/_sim/upload":
        await _upload(receive, send)
    elif path == "/sso/qps/user":
        await _login(scope, send)
    elif path == "/sso/qps/csrftoken":
        await _reply(send, 200, b"", [(b"qlik-csrf-token", secrets.token_hex(16).encode())])
    else:
        await _reply(send, 404, b"not found", [(b"content-type", b"text/plain")])


def _starlette_app() -> Any:
    """The same endpoints as a typical Starlette app (Request/Response objects, routing).

    Costs roughly what a FastAPI/Starlette upstream costs per request, several times the raw ASGI
    `app`; `python -m benchmarks --upstream starlette` measures against it.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def content_bytes(request: Request) -> Response:
        size = int(request.query_params.get("size", "0"))
        if size <= 1024 * 1024:
            body = _SMALL_BODIES.get(size)
            if body is None:
                body = _SMALL_BODIES[size] = (_PATTERN * (size // len(_PATTERN) + 1))[:size]
            return Response(body, media_type="application/octet-stream")

        async def chunks() -> Any:
            left = size
            while left > 0:
                n = min(left, _CHUNK)
                left -= n
                yield _PATTERN if n == _CHUNK else _PATTERN[:n]

        return StreamingResponse(
            chunks(), media_type="application/octet-stream", headers={"content-length": str(size)}
        )

    async def upload(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return JSONResponse({"size": size})

    async def login(request: Request) -> Response:
        user = request.headers.get("hdr-usr")
        if user is None:
            return JSONResponse({"session": "inactive"})
        directory, _, uid = user.partition("\\")
        response = JSONResponse({"userDirectory": directory, "userId": uid, "session": "active"})
        response.set_cookie(_COOKIE, secrets.token_hex(16), httponly=True)
        return response

    async def csrftoken(request: Request) -> Response:
        return Response(b"", headers={"qlik-csrf-token": secrets.token_hex(16)})

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                else:
                    await websocket.send_bytes(message.get("bytes") or b"")
        except WebSocketDisconnect:
            return

    return Starlette(
        routes=[
            Route("/sso/content/_sim/bytes", content_bytes),
            Route("/sso/content/_sim/upload", upload, methods=["POST", "PUT"]),
            Route("/sso/qps/user", login),
            Route("/sso/qps/csrftoken", csrftoken),
            WebSocketRoute("/sso/app/_sim_echo", echo),
        ]
    )


starlette_app = _starlette_app()
