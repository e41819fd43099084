"""The simulated QPS REST API port (4243 in production; mutual TLS is set up by the server).

`/qps/<prefix>/ticket|session|user` (`/qps/...` for the default VP). Every call needs the xrfkey
pair (query `xrfkey`, any case, equal to header `X-Qlik-Xrfkey`, 16 chars [0-9a-zA-Z]) else 403 with
QPS's text. Request JSON keys are case-insensitive; answers are PascalCase; created things get 201.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from ._asgi import (
    Message,
    Receive,
    Scope,
    Send,
    header_pairs,
    http_only,
    parse_cookies,
    query_get,
    send_body,
    send_json,
)
from .faults import Faults
from .records import RecordedRequest, SimSession
from .state import LoginRefused, SimState
from .xrfkey import XRF_FAILED

__all__ = ["XRF_FAILED", "ApiApp", "xrfkey_ok"]

MAX_BODY = 1024 * 1024
MAX_FIELD = 256
_XRFKEY = re.compile(r"[0-9a-zA-Z]{16}")
_SESSION_ID = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")


class _BadRequest(Exception):
    pass


def xrfkey_ok(record: RecordedRequest) -> bool:
    """QPS's and QRS's rule: `xrfkey` in the query (any case), 16 of [0-9a-zA-Z], equal to the
    first `X-Qlik-Xrfkey` header."""
    key = query_get(record.query, "xrfkey")
    header_keys = record.header("X-Qlik-Xrfkey")
    return key is not None and bool(_XRFKEY.fullmatch(key)) and header_keys[:1] == [key]


def _session_json(session: SimSession) -> dict[str, Any]:
    return {
        "UserDirectory": session.user_directory,
        "UserId": session.user_id,
        "UserName": session.user_id,
        "Attributes": [{name: value} for name, value in session.attributes],
        "SessionId": session.id,
    }


def _user_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name.lower())
    if not isinstance(value, str):
        raise _BadRequest(f"{name} must be a string")
    value = value.strip()
    if not value or "\\" in value or len(value) > MAX_FIELD:
        raise _BadRequest(f"{name} is invalid")
    return value


def _attributes(body: dict[str, Any]) -> list[tuple[str, str]]:
    raw = body.get("attributes")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _BadRequest("Attributes must be a list")
    pairs: list[tuple[str, str]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise _BadRequest("Attributes items must be objects")
        for name, value in item.items():
            if not isinstance(value, str) or len(name) > MAX_FIELD or len(value) > 4096:
                raise _BadRequest("Attributes values must be strings")
            pairs.append((name, value))
    return pairs


class ApiApp:
    """ASGI app of the QPS REST API port."""

    def __init__(
        self, state: SimState, faults: Faults, targets: Callable[[str], str | None]
    ) -> None:
        self.state = state
        self.faults = faults
        self._targets = targets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await http_only(scope, receive, send):
            return
        headers = header_pairs(scope)
        query = scope.get("query_string", b"").decode("latin-1")
        if self.faults.api_drop_headers or self.faults.api_drop_query:
            headers, query = self._gateway(headers, query)
        record = RecordedRequest(
            port="api",
            method=scope["method"],
            path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            query=query,
            headers=headers,
            cookies=dict(reversed(parse_cookies(headers))),
            time=self.state.clock(),
        )
        self.state.record_request(record)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        if self.faults.api_latency > 0:
            await asyncio.sleep(self.faults.api_latency)
        body, too_big = await _read_body(receive)
        if not xrfkey_ok(record):
            await send_body(recording_send, 403, XRF_FAILED, "text/plain; charset=utf-8")
            return
        try:
            await self._route(record, scope["path"], body, too_big, recording_send)
        except _BadRequest as exc:
            await send_body(recording_send, 400, str(exc), "text/plain; charset=utf-8")

    def _gateway(
        self, headers: list[tuple[str, str]], query: str
    ) -> tuple[list[tuple[str, str]], str]:
        """What a gateway that strips `faults.api_drop_*` lets through."""
        drop_headers = {name.lower() for name in self.faults.api_drop_headers}
        drop_query = {name.lower() for name in self.faults.api_drop_query}
        kept = [(k, v) for k, v in headers if k.lower() not in drop_headers]
        parts = [p for p in query.split("&") if p.split("=", 1)[0].lower() not in drop_query]
        return kept, "&".join(parts)

    async def _route(
        self, record: RecordedRequest, path: str, body: bytes, too_big: bool, send: Send
    ) -> None:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if not segments or segments[0] != "qps" or len(segments) < 2:
            await send_body(send, 404, "Not found", "text/plain")
            return
        if segments[1] in self.state.vps and segments[1] != "":
            prefix, rest = segments[1], segments[2:]
        elif "" in self.state.vps and segments[1] in ("ticket", "session", "user"):
            prefix, rest = "", segments[1:]
        else:
            await send_body(send, 404, "Unknown virtual proxy", "text/plain")
            return
        record.prefix = prefix
        method = record.method
        if rest == ["ticket"] and method == "POST":
            data = _json_object(body, too_big)
            ud, uid = _user_field(data, "UserDirectory"), _user_field(data, "UserId")
            attributes = _attributes(data)
            target_id = data.get("targetid")
            if target_id is not None and not isinstance(target_id, str):
                raise _BadRequest("TargetId must be a string")
            ticket = self.state.issue_ticket(prefix, ud, uid, attributes)
            target = self._targets(target_id) if target_id else None
            record.user = f"{ud}\\{uid}"
            await send_json(
                send,
                201,
                {
                    "UserDirectory": ud,
                    "UserId": uid,
                    "Attributes": [{n: v} for n, v in attributes],
                    "Ticket": ticket,
                    "TargetUri": target,
                },
            )
        elif rest == ["session"] and method == "POST":
            data = _json_object(body, too_big)
            ud, uid = _user_field(data, "UserDirectory"), _user_field(data, "UserId")
            attributes = _attributes(data)
            session_id = data.get("sessionid")
            if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
                raise _BadRequest("SessionId is invalid")
            try:
                # No licence check here: Qlik checks the access pass when the session is used.
                session = self.state.login(
                    prefix, ud, uid, attributes, session_id=session_id, check_access=False
                )
            except LoginRefused:  # only the parallel-session cap is checked at creation
                await send_body(send, 403, "Too many sessions", "text/plain")
                return
            record.session_id, record.user = session.id, session.user
            await send_json(send, 201, _session_json(session))
        elif len(rest) == 2 and rest[0] == "session" and method in ("GET", "DELETE"):
            self.state.expire()
            found = self.state.sessions.get(rest[1])
            if found is None or found.prefix != prefix:
                await send_body(send, 404, "Session not found", "text/plain")
                return
            if method == "DELETE":
                self.state.end(found.id, "deleted")
            record.session_id, record.user = found.id, found.user
            await send_json(send, 200, _session_json(found))
        elif len(rest) == 3 and rest[0] == "user" and method in ("GET", "DELETE"):
            sessions = self.state.user_sessions(prefix, rest[1], rest[2])
            if method == "DELETE":
                for session in sessions:
                    self.state.end(session.id, "deleted")
            record.user = f"{rest[1]}\\{rest[2]}"
            await send_json(send, 200, [_session_json(s) for s in sessions])
        else:
            await send_body(send, 404, "Not found", "text/plain")


def _json_object(body: bytes, too_big: bool) -> dict[str, Any]:
    if too_big:
        raise _BadRequest("Body too large")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise _BadRequest("Malformed JSON") from None
    if not isinstance(data, dict):
        raise _BadRequest("Expected a JSON object")
    # QPS binds JSON keys case-insensitively.
    return {str(k).lower(): v for k, v in data.items()}


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The body up to MAX_BODY; the rest is read and dropped (so the connection stays usable)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), size > MAX_BODY
