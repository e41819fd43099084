"""An ASGI wrapper that records WebSocket handshakes as the app received and answered them.

It keeps the `Origin`, the *names* of the cookies that came along (never a value) and the first
answer the app sent: "accept", "close" or the HTTP status of a refusal
(`websocket.http.response.start`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Handshake", "HandshakeRecorder"]


@dataclass
class Handshake:
    path: str
    origin: str | None
    cookie_names: list[str]
    answer: str = "none"


@dataclass
class HandshakeRecorder:
    app: ASGIApp
    handshakes: list[Handshake] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = SimpleCookie()
        cookies.load(headers.get("cookie", ""))
        record = Handshake(scope["path"], headers.get("origin"), sorted(cookies))
        self.handshakes.append(record)

        async def recording_send(message: Message) -> None:
            if record.answer == "none":
                kind = message["type"]
                if kind == "websocket.accept":
                    record.answer = "accept"
                elif kind == "websocket.close":
                    record.answer = "close"
                elif kind == "websocket.http.response.start":
                    record.answer = str(message["status"])
            await send(message)

        await self.app(scope, receive, recording_send)
