"""The engine step: open the engine WebSocket as the middleware will, and wait for a real answer.

A handshake proves little: QPS accepts the upgrade and only then says, in a notice, that the app
does not exist (`OnNoEngineAvailable`), that the user has no access pass (`OnLicenseAccessDenied`)
or too many sessions, or that it wants a login (`mustAuthenticate`). So the step reads every frame
until the engine has answered one request: `OpenDoc` of `check.app_id`, or `EngineVersion` on
`engineData`. Anything else (a fatal notice, a close, a JSON-RPC error, a frame that is not JSON,
silence) fails the step with its own cause.

The socket goes through `proxy/ws_client.py` like the middleware's own: no redirect is followed
and websockets' DEBUG log (which prints the handshake, session cookie included) is dropped.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..proxy.ws_client import connect_no_redirects, quiet_logger
from ..upstream import Upstream
from .context import redact

__all__ = ["EngineOutcome", "ask_engine", "list_apps"]

_LOGGER = quiet_logger("qlik_sso_middleware.diagnostics.engine")
_MAX_FRAMES = 32


@dataclass
class EngineOutcome:
    """What the engine said. `ok` only when it answered the request."""

    ok: bool = False
    status: int | None = None  # handshake refused with this HTTP status
    notice: str | None = None  # a fatal notice's method, or "mustAuthenticate"
    error: str | None = None  # JSON-RPC error, close, timeout, garbage: shown to the user
    result: dict[str, Any] = field(default_factory=dict)
    user: str | None = None  # from OnAuthenticationInformation


async def ask_engine(
    upstream: Upstream,
    uri: str,
    *,
    origin: str,
    headers: dict[str, str],
    method: str,
    params: list[Any],
    limit: float,
) -> EngineOutcome:
    """Open `uri` and send `method(params)` once the engine is ready; see the module docstring."""
    outcome = EngineOutcome()
    try:
        async with asyncio.timeout(limit):
            async with connect_no_redirects(
                uri,
                host=upstream.host,
                port=upstream.port,
                ssl=upstream.ssl_context,
                server_hostname=upstream.host if upstream.ssl_context else None,
                origin=origin,  # type: ignore[arg-type]
                additional_headers=headers,
                open_timeout=limit,
                max_size=None,
                proxy=None,
                logger=_LOGGER,
            ) as ws:
                await _converse(ws, method, params, outcome)
    except InvalidStatus as exc:
        outcome.status = exc.response.status_code
    except TimeoutError:
        outcome.error = outcome.error or f"no answer within {limit:g} s"
    except ConnectionClosed as exc:
        outcome.error = (
            f"Qlik closed the socket ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        )
    except (InvalidHandshake, OSError, ValueError) as exc:
        outcome.error = f"handshake failed ({type(exc).__name__})"
    return outcome


async def _converse(
    ws: ClientConnection, method: str, params: list[Any], outcome: EngineOutcome
) -> None:
    sent = False
    for _ in range(_MAX_FRAMES):
        try:
            text = await ws.recv(decode=True)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else "no close frame"
            outcome.error = f"Qlik closed the socket ({code}) before answering {method}"
            return
        try:
            message = json.loads(text)
        except ValueError:
            outcome.error = f'a frame that is not JSON: "{redact(str(text))[:120]}"'
            return
        if not isinstance(message, dict):
            outcome.error = f"unexpected JSON: {redact(json.dumps(message))[:120]}"
            return
        name = message.get("method")
        raw = message.get("params")
        details: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if name == "OnAuthenticationInformation":
            if details.get("mustAuthenticate"):
                outcome.notice = "mustAuthenticate"
                return
            outcome.user = f"{details.get('userDirectory')}\\{details.get('userId')}"
        elif isinstance(name, str) and details.get("severity") == "fatal":
            outcome.notice = name
            return
        elif name == "OnConnected" and not sent:
            await ws.send(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": method, "handle": -1, "params": params}
                )
            )
            sent = True
        elif message.get("id") == 1:
            if "error" in message:
                error = message["error"] if isinstance(message["error"], dict) else {}
                outcome.error = (
                    f"{method} answered error {error.get('code')}: {error.get('message')} "
                    f"{error.get('parameter') or ''}".strip()
                )
                return
            outcome.ok = True
            outcome.result = message.get("result") or {}
            return
    outcome.error = f"{_MAX_FRAMES} frames without an answer to {method}"


async def list_apps(
    upstream: Upstream, uri: str, *, origin: str, headers: dict[str, str], limit: float
) -> list[tuple[str, str]] | None:
    """(id, name) of the apps the engine lists on `engineData` (`GetDocList`); None: unknown."""
    outcome = await ask_engine(
        upstream,
        uri,
        origin=origin,
        headers=headers,
        method="GetDocList",
        params=[],
        limit=limit,
    )
    docs = outcome.result.get("qDocList") if outcome.ok else None
    if not isinstance(docs, list):
        return None
    apps = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("qDocId"), str):
            apps.append((doc["qDocId"], str(doc.get("qDocName") or doc.get("qTitle") or "")))
    return apps
