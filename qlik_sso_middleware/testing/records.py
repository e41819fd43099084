"""What the simulator remembers: sessions, and a log of every request and WebSocket frame it saw.

Tests read these to assert what reached "Qlik" (e.g. which identity header arrived, how many logins
happened). The log never keeps large payloads: request bodies are not stored, frames above 1 MiB are
stored as their sha256 hex digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FRAME_DATA_LIMIT", "RecordedFrame", "RecordedRequest", "SimSession"]

#: Frames larger than this are recorded as a sha256 hex digest instead of their data.
FRAME_DATA_LIMIT = 1024 * 1024


@dataclass
class SimSession:
    """A proxy session of the simulated QPS; `id` is the cookie value."""

    id: str = field(repr=False)
    prefix: str
    user_directory: str
    user_id: str
    attributes: list[tuple[str, str]]
    created_at: float
    last_seen: float
    csrf_token: str = field(repr=False)
    ended: bool = False
    ended_at: float | None = None
    #: why it ended: "logout", "deleted", "timeout", "restart"
    end_reason: str | None = None
    #: False until Qlik itself (hub, apps, engine) was used with an access pass: sessions made
    #: by the proxy's own API or the QPS API are created without the licence check.
    licensed: bool = True

    @property
    def user(self) -> str:
        """`DIRECTORY\\id`, the form tests compare against."""
        return f"{self.user_directory}\\{self.user_id}"


@dataclass
class RecordedRequest:
    """One HTTP request or WebSocket handshake as the simulator received it.

    `headers` keeps the order and duplicates as received (names lower-cased by the HTTP parser).
    `status` is what the simulator answered (101 for an accepted WebSocket). `client_left` is set
    when the client went away before a streamed test answer (`content/_sim/bytes`) ended.
    """

    port: Literal["proxy", "api"]
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    cookies: dict[str, str]
    time: float
    websocket: bool = False
    prefix: str | None = None
    session_id: str | None = None
    user: str | None = None
    status: int = 0
    client_left: bool = False

    def header(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in order received."""
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]


@dataclass
class RecordedFrame:
    """One WebSocket frame (or close) in either direction.

    `direction`: "in" from the client, "out" to the client, "close_in" / "close_out" for closes.
    `data` is the full payload up to `FRAME_DATA_LIMIT`; above it, its sha256 hex digest
    (and `truncated` is set).
    """

    direction: Literal["in", "out", "close_in", "close_out"]
    session_id: str | None
    user: str | None
    kind: Literal["text", "bytes", "close"]
    size: int
    data: str | bytes | None
    path: str
    time: float
    close_code: int | None = None
    close_reason: str | None = None
    truncated: bool = False
