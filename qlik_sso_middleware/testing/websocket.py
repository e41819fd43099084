"""WebSockets of the simulated proxy: the engine channel `app/<appId>` and the `_sim_echo` socket.

Handshake checks, in QPS order: virtual proxy, route, `Origin` (Host's hostname or the VP's host
allow list, else 403), session (cookie / ticket / header), then extended CSRF (`qlik-csrf-token`
query equal to the session's token and no `Authorization` header, else 403). Without a session the
socket is accepted, told `mustAuthenticate: true` with a `loginUri`, then closed.

Every frame in both directions and every close is recorded (`RecordedFrame`); traffic slides the
session's inactivity timeout; ending the session pushes a fatal notice and closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from ._asgi import Receive, Scope, Send, hostname_of, query_get
from .engine import EngineRpc, notification
from .records import FRAME_DATA_LIMIT, RecordedFrame
from .state import LoginRefused, SocketHandle
from .user_tag import tag_frame

if TYPE_CHECKING:
    from .proxy_app import ProxyApp, RequestContext

__all__ = ["NOTICE_CLOSE_CODE", "serve_websocket"]

MAX_HEADER_BYTES = 64 * 1024  # as on the HTTP side (proxy_app.MAX_HEADER_BYTES)
#: Close code after a fatal notice (QPS closes normally once the notice is delivered).
NOTICE_CLOSE_CODE = 1000
_ENGINE_PATH = re.compile(r"app/(?P<app>[^/]+)(?:/identity/(?P<identity>[^/]+))?(?:/ttl/\d+)?/?")
_ECHO_APP = "_sim_echo"


class _Socket:
    """One accepted socket: sends and records frames."""

    def __init__(self, proxy: ProxyApp, ctx: RequestContext, send: Send) -> None:
        self.state = proxy.state
        self.ctx = ctx
        self._send = send
        self.closed = False
        #: Tag engine frames with their user (`user_tag`); set once the socket is an engine's.
        self.tag = False

    @property
    def session_id(self) -> str | None:
        return self.ctx.session.id if self.ctx.session else None

    @property
    def user(self) -> str | None:
        return self.ctx.session.user if self.ctx.session else None

    def record(
        self,
        direction: Literal["in", "out", "close_in", "close_out"],
        data: str | bytes | None,
        code: int | None = None,
        reason: str | None = None,
    ) -> None:
        kind: Literal["text", "bytes", "close"]
        if direction.startswith("close"):
            kind, size = "close", 0
        elif isinstance(data, str):
            kind, size = "text", len(data.encode())
        else:
            kind, size = "bytes", len(data or b"")
        truncated = size > FRAME_DATA_LIMIT
        if truncated:
            raw = data.encode() if isinstance(data, str) else (data or b"")
            data = hashlib.sha256(raw).hexdigest()
        self.state.record_frame(
            RecordedFrame(
                direction=direction,
                session_id=self.session_id,
                user=self.user,
                kind=kind,
                size=size,
                data=data,
                path=self.ctx.record.path,
                time=self.state.clock(),
                close_code=code,
                close_reason=reason,
                truncated=truncated,
            )
        )

    async def send(self, data: str | bytes) -> None:
        if self.tag and self.user is not None and isinstance(data, str):
            data = tag_frame(data, self.user)
        self.record("out", data)
        if isinstance(data, str):
            await self._send({"type": "websocket.send", "text": data})
        else:
            await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.record("close_out", None, code, reason)
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def fatal(self, method: str, message: str) -> None:
        await self.send(notification(method, {"severity": "fatal", "message": message}))
        await self.close(NOTICE_CLOSE_CODE, method)


async def _refuse(ctx_record: Any, send: Send, status: int, text: str) -> None:
    """Refuse the handshake with an HTTP answer (uvicorn's websocket.http.response extension)."""
    ctx_record.status = status
    body = text.encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})


async def serve_websocket(proxy: ProxyApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run one WebSocket connection of the proxy port to its end."""
    record, ctx = proxy.context(scope, websocket=True)
    connect = await receive()
    if connect["type"] != "websocket.connect":
        return
    # Faults apply to upgrades like to any HTTP answer of the proxy port.
    if proxy.faults.latency > 0:
        await asyncio.sleep(proxy.faults.latency)
    forced = proxy.faults.take_forced_status(record.path)
    if forced is not None:
        await _refuse(record, send, forced, "Injected failure")
        return
    if ctx is None or sum(len(k) + len(v) + 4 for k, v in record.headers) > MAX_HEADER_BYTES:
        await _refuse(record, send, 400, "The http request header is incorrect.")
        return
    match = _ENGINE_PATH.fullmatch(ctx.rest)
    if match is None:
        await _refuse(record, send, 404, "Not found")
        return
    origin = ctx.header_values("origin")
    if origin:
        origin_host = hostname_of(urlsplit(origin[0]).netloc) if "//" in origin[0] else ""
        allowed = {hostname_of(ctx.host), *ctx.vp.host_allow_list}
        if origin_host not in allowed:
            await _refuse(record, send, 403, "Origin not allowed")
            return
    refused: str | None = None
    # A session that exists already has its access pass checked after the engine's greeting.
    proxy.authenticate(ctx, allow_login=False, resource=False)
    if ctx.session is None:
        ticket = query_get(ctx.query, "qlikTicket")
        if ctx.vp.extended_ws_csrf and not ticket and proxy.can_log_in(ctx):
            # No session yet means no token this handshake could carry: refuse before a header
            # or anonymous login is created for nothing (it would hold a parallel-session slot).
            await _refuse(record, send, 403, "CSRF check failed")
            return
        try:
            proxy.authenticate(ctx)
        except LoginRefused as exc:
            refused = exc.reason
    session = ctx.session
    if session is not None and ctx.vp.extended_ws_csrf and ctx.created_by != "ticket":
        # A ticket redeemed on this very handshake cannot be a replayed ambient cookie.
        token = query_get(ctx.query, "qlik-csrf-token")
        if ctx.header_values("authorization") or token != session.csrf_token:
            if ctx.created_by is not None:
                proxy.state.end(session.id, "logout")
            await _refuse(record, send, 403, "CSRF check failed")
            return
    headers = [(b"set-cookie", c.encode("latin-1")) for c in ctx.set_cookie]
    await send({"type": "websocket.accept", "headers": headers})
    record.status = 101
    sock = _Socket(proxy, ctx, send)
    app_id = unquote(match["app"])
    identity = unquote(match["identity"] or "")
    if refused is not None:
        if refused == "max_sessions":
            await sock.fatal("OnMaxParallelSessionsExceeded", "Too many parallel sessions")
        else:
            await sock.fatal("OnLicenseAccessDenied", "No access pass")
        await _drain_until_disconnect(sock, receive)
        return
    if session is None:
        params: dict[str, Any] = {"mustAuthenticate": True, "loginUri": proxy.login_uri(ctx)}
        await sock.send(notification("OnAuthenticationInformation", params))
        await sock.close(NOTICE_CLOSE_CODE, "")
        await _drain_until_disconnect(sock, receive)
        return
    is_echo = app_id == _ECHO_APP
    sock.tag = proxy.tag_user and not is_echo  # the echo socket sends back what it got
    engine_key: tuple[str, ...] | None = None
    if not is_echo:
        await sock.send(
            notification(
                "OnAuthenticationInformation",
                {
                    "userId": session.user_id,
                    "userDirectory": session.user_directory,
                    "mustAuthenticate": False,
                },
            )
        )
        try:
            proxy.state.use(session)  # the access pass, checked once Qlik itself is used
        except LoginRefused:
            await sock.fatal("OnLicenseAccessDenied", "No access pass")
            await _drain_until_disconnect(sock, receive)
            return
        if not ctx.vp.load_balancing_nodes or (app_id != "engineData" and app_id not in proxy.apps):
            await sock.fatal("OnNoEngineAvailable", "No engine available for the app")
            await _drain_until_disconnect(sock, receive)
            return
        engine_key = (
            session.prefix,
            session.user_directory.lower(),
            session.user_id.lower(),
            app_id,
            identity,
        )
        attached = engine_key in proxy.state.engine_sessions
        proxy.state.engine_sessions.add(engine_key)
        state_name = "SESSION_ATTACHED" if attached else "SESSION_CREATED"
        await sock.send(notification("OnConnected", {"qSessionState": state_name}))
    handle = SocketHandle(session.id, session.prefix, ctx.record.path, engine_key)
    proxy.state.sockets.add(handle)
    if session.ended:
        # Ended (a restart, a logout, a timeout) during the greeting above, before this socket
        # could be told: Qlik ends every socket of a session it ends.
        notice = "OnSessionTimedOut" if session.end_reason == "timeout" else "OnSessionClosed"
        handle.events.put_nowait(("end", notice))
    rpc = EngineRpc(proxy.apps, (session.user_directory, session.user_id), app_id)
    reader = asyncio.create_task(_read(receive, handle))
    try:
        await _serve(sock, handle, rpc, is_echo)
    finally:
        proxy.state.sockets.discard(handle)
        reader.cancel()
        # The socket is gone either way; the reader's own end is of no interest.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _read(receive: Receive, handle: SocketHandle) -> None:
    """Move client messages into the socket's event queue (so session ends can interleave)."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            handle.events.put_nowait(("disconnect", message))
            return
        if message["type"] == "websocket.receive":
            handle.events.put_nowait(("message", message))


async def _serve(sock: _Socket, handle: SocketHandle, rpc: EngineRpc, is_echo: bool) -> None:
    while True:
        kind, payload = await handle.events.get()
        if kind == "disconnect":
            sock.record("close_in", None, payload.get("code"), payload.get("reason") or "")
            sock.closed = True
            return
        if kind == "end":
            if not sock.closed:
                await sock.fatal(payload, "The session has ended")
            continue
        if kind == "close":
            code, reason = payload
            await sock.close(code, reason)
            continue
        if sock.closed:
            continue  # messages racing our close: keep reading until the client's close arrives
        text: str | None = payload.get("text")
        data: bytes | None = payload.get("bytes")
        sock.record("in", text if text is not None else data)
        sock.state.touch(sock.session_id)
        if is_echo:
            if text is not None and text.startswith("close:"):
                _, code_text, reason = (
                    text.split(":", 2)
                    if text.count(":") >= 2
                    else (
                        "",
                        text[6:],
                        "",
                    )
                )
                try:
                    code = int(code_text)
                except ValueError:
                    code = 1000
                await sock.close(code, reason)
            elif text is not None and text.startswith("send:") and text[5:].isdigit():
                # "send:<n>": n bytes in one binary message (Qlik → browser size limits).
                await sock.send(b"q" * min(int(text[5:]), 512 * 1024 * 1024))
            else:
                await sock.send(text if text is not None else (data or b""))
            continue
        if text is None:
            continue  # the engine ignores binary frames
        answer = rpc.handle_text(text)
        if answer is not None:
            await sock.send(answer)


async def _drain_until_disconnect(sock: _Socket, receive: Receive) -> None:
    """After our close, wait for the client's close so it is recorded (bounded by the client)."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            sock.record("close_in", None, message.get("code"), message.get("reason") or "")
            return
