"""The tenant's engine WebSocket, `wss://<tenant>/app/<appId>[/identity/<x>][/ttl/<n>]`.

How qlik-api opens it (its `createEnigmaSession`): Node sends `Authorization: Bearer <token>`;
a browser with the oauth2 auth type adds `accessToken=<token>` (a token exchanged for the
"websocket" purpose); cookie auth adds `qlik-csrf-token=<token>` and, cross-origin,
`qlik-web-integration-id`. A handshake without a valid caller is refused 401, a cookie caller with
a wrong CSRF token or an unlisted origin 403, an unknown app 404 [all inferred: Qlik documents
the parameters, not the refusals]. Once open, it speaks the simulator's engine JSON-RPC
(`testing/engine.py`), greeting with `OnConnected` like the engine does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from .._asgi import Receive, Scope, Send, header_pairs, query_get
from ..engine import EngineRpc, notification
from ..websocket import _refuse
from .answers import QlikCloudError

if TYPE_CHECKING:
    from .app import CloudApp

__all__ = ["serve_engine_socket"]

_ENGINE_PATH = re.compile(r"/app/(?P<app>[^/]+)(?:/identity/(?P<identity>[^/]+))?(?:/ttl/\d+)?/?")


async def serve_engine_socket(app: CloudApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Check the handshake, then run the engine JSON-RPC until the client goes."""
    record = app.record(scope, websocket=True)
    if (await receive())["type"] != "websocket.connect":
        return
    headers = [(k.lower(), v) for k, v in header_pairs(scope)]
    match = _ENGINE_PATH.fullmatch(scope["path"])
    if match is None:
        await _refuse(record, send, 404, "Not found")
        return
    try:
        principal = app.principal(headers, record.query, query_token=True)
    except QlikCloudError:
        principal = None
    if principal is None or principal.user is None:
        await _refuse(record, send, 401, "Unauthorized")
        return
    if principal.session is not None:
        origin = app.origins.foreign_origin(headers)
        if origin and not app.origins.allows(origin, headers, record.query):
            await _refuse(record, send, 403, "Origin not allowed")
            return
        if query_get(record.query, "qlik-csrf-token") != principal.session.csrf_token:
            await _refuse(record, send, 403, "CSRF check failed")
            return
    app_id = unquote(match["app"])
    if app_id not in app.apps:
        await _refuse(record, send, 404, "App not found")
        return
    user = principal.user
    record.user, record.status = user.subject, 101
    await send({"type": "websocket.accept"})
    key = (user.id, app_id, unquote(match["identity"] or ""))
    state = "SESSION_ATTACHED" if key in app.state.engine_sessions else "SESSION_CREATED"
    app.state.engine_sessions.add(key)
    await send(
        {"type": "websocket.send", "text": notification("OnConnected", {"qSessionState": state})}
    )
    rpc = EngineRpc(app.apps, ("", user.subject), app_id)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            continue  # the engine ignores binary frames
        answer = rpc.handle_text(text)
        if answer is not None:
            await send({"type": "websocket.send", "text": answer})
