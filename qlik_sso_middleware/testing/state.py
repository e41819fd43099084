"""The simulated QPS's memory: sessions, tickets, engine sessions, open sockets and the request log.

All of it lives on the simulator's event loop; nothing here blocks. Public readers (tests in another
thread) only read lists that are appended to, which is safe in CPython.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import RecordedFrame, RecordedRequest, SimSession
from .virtual_proxy import VirtualProxy

__all__ = ["LoginRefused", "SimState", "SocketHandle", "Ticket"]

TICKET_LIFETIME = 60.0


def _user_key(prefix: str, user_directory: str, user_id: str) -> tuple[str, str, str]:
    return (prefix, user_directory.lower(), user_id.lower())


class LoginRefused(Exception):
    """A login was refused: `reason` is "max_sessions" or "no_access_pass"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Ticket:
    prefix: str
    user_directory: str
    user_id: str
    attributes: list[tuple[str, str]]
    created_at: float


@dataclass(eq=False)
class SocketHandle:
    """An open WebSocket: the simulator pushes control events into `events`."""

    session_id: str | None
    prefix: str
    path: str
    engine_key: tuple[str, ...] | None
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)


class SimState:
    """Sessions and tickets of every virtual proxy, with the injectable clock."""

    def __init__(
        self,
        virtual_proxies: Sequence[VirtualProxy],
        clock: Callable[[], float],
        *,
        access_allowed: Callable[[str, str], bool],
        log_limit: int | None = None,
    ) -> None:
        self.vps: dict[str, VirtualProxy] = {}
        for vp in virtual_proxies:
            if vp.prefix in self.vps:
                raise ValueError(f"virtual_proxies: prefix {vp.prefix!r} used twice")
            self.vps[vp.prefix] = vp
        self.clock = clock
        self._access_allowed = access_allowed
        self.sessions: dict[str, SimSession] = {}
        self.history: list[SimSession] = []
        # Sessions holding one of a user's parallel-session slots: live, or ended within cool-down.
        self._slots: dict[tuple[str, str, str], list[SimSession]] = {}
        self.tickets: dict[str, Ticket] = {}
        self.sockets: set[SocketHandle] = set()
        self.engine_sessions: set[tuple[str, ...]] = set()
        self.requests: list[RecordedRequest] = []
        self.frames: list[RecordedFrame] = []
        self._log_limit = log_limit

    # -- log ------------------------------------------------------------------------------------

    def record_request(self, record: RecordedRequest) -> None:
        self.requests.append(record)
        self._trim(self.requests)

    def record_frame(self, frame: RecordedFrame) -> None:
        self.frames.append(frame)
        self._trim(self.frames)

    def _trim(self, log: list[Any]) -> None:
        """Keep a long-running simulator's log bounded: drop the oldest half at the limit."""
        if self._log_limit is not None and len(log) > self._log_limit:
            del log[: len(log) - self._log_limit // 2]

    # -- sessions -------------------------------------------------------------------------------

    def lookup(self, prefix: str, session_id: str | None) -> SimSession | None:
        """The live session `session_id` of VP `prefix`, sliding its timeout (None: absent)."""
        if not session_id:
            return None
        session = self.sessions.get(session_id)
        if session is None or session.prefix != prefix or self._expired(session):
            return None
        session.last_seen = self.clock()
        return session

    def _expired(self, session: SimSession) -> bool:
        """End `session` if its inactivity timeout has passed; True when it is (now) ended."""
        if session.ended:
            return True
        if session.last_seen + self.vps[session.prefix].session_timeout <= self.clock():
            self.end(session.id, "timeout")
            return True
        return False

    def use(self, session: SimSession) -> None:
        """Using Qlik with a session not yet licensed checks the access pass (`LoginRefused`);
        the session stays, so it works once the user is allocated access."""
        if session.licensed:
            return
        if not self._access_allowed(session.user_directory, session.user_id):
            raise LoginRefused("no_access_pass")
        session.licensed = True

    def touch(self, session_id: str | None) -> None:
        """WebSocket traffic slides the inactivity timeout too (unless it has already passed)."""
        session = self.sessions.get(session_id) if session_id else None
        if session is not None and not self._expired(session):
            session.last_seen = self.clock()

    def login(
        self,
        prefix: str,
        user_directory: str,
        user_id: str,
        attributes: Sequence[tuple[str, str]] = (),
        session_id: str | None = None,
        *,
        check_access: bool = True,
    ) -> SimSession:
        """Create a session, enforcing access passes and the parallel-session cap.

        `check_access=False` (the QPS API) leaves the licence check to the session's first use
        through the proxy (`use`), as Qlik does.
        """
        if check_access and not self._access_allowed(user_directory, user_id):
            raise LoginRefused("no_access_pass")
        vp = self.vps[prefix]
        key = _user_key(prefix, user_directory, user_id)
        for held in self._slots.get(key, []):
            self._expired(held)
        now = self.clock()
        slots = [
            s
            for s in self._slots.get(key, [])
            if not s.ended or (s.ended_at is not None and s.ended_at + vp.cooldown > now)
        ]
        self._slots[key] = slots
        if len(slots) >= vp.max_parallel_sessions:
            raise LoginRefused("max_sessions")
        if session_id is not None and session_id in self.sessions:
            self.end(session_id, "replaced")
        session = SimSession(
            id=session_id or str(uuid.uuid4()),
            prefix=prefix,
            user_directory=user_directory,
            user_id=user_id,
            attributes=list(attributes),
            created_at=now,
            last_seen=now,
            csrf_token=secrets.token_urlsafe(24),
            licensed=check_access,
        )
        self.sessions[session.id] = session
        self.history.append(session)
        slots.append(session)
        return session

    def end(self, session_id: str, reason: str) -> SimSession | None:
        """End a session; its WebSockets get OnSessionTimedOut (timeout) or OnSessionClosed."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return None
        session.ended = True
        session.ended_at = self.clock()
        session.end_reason = reason
        notice = "OnSessionTimedOut" if reason == "timeout" else "OnSessionClosed"
        for handle in list(self.sockets):
            if handle.session_id == session_id:
                handle.events.put_nowait(("end", notice))
        user = _user_key(session.prefix, session.user_directory, session.user_id)
        if all(s.ended for s in self._slots.get(user, [])):
            # The user's last proxy session is gone: so are their engine sessions.
            self.engine_sessions = {k for k in self.engine_sessions if k[:3] != user}
        return session

    def expire(self) -> None:
        """End every session whose sliding inactivity timeout has passed."""
        now = self.clock()
        for session in list(self.sessions.values()):
            if session.last_seen + self.vps[session.prefix].session_timeout <= now:
                self.end(session.id, "timeout")

    def user_sessions(self, prefix: str, user_directory: str, user_id: str) -> list[SimSession]:
        """The user's live sessions on VP `prefix` (directory and id compared case-insensitively)."""
        held = self._slots.get(_user_key(prefix, user_directory, user_id), [])
        return [s for s in held if not self._expired(s)]

    def restart(self) -> None:
        """Forget everything, like a QPS restart: sessions, cool-downs, tickets, engine sessions."""
        for session_id in list(self.sessions):
            self.end(session_id, "restart")
        for handle in list(self.sockets):
            handle.events.put_nowait(("end", "OnSessionClosed"))
        self._slots.clear()  # cool-downs are forgotten too
        self.tickets.clear()
        self.engine_sessions.clear()

    # -- tickets --------------------------------------------------------------------------------

    def issue_ticket(
        self, prefix: str, user_directory: str, user_id: str, attributes: Sequence[tuple[str, str]]
    ) -> str:
        ticket = secrets.token_urlsafe(12)
        self.tickets[ticket] = Ticket(
            prefix, user_directory, user_id, list(attributes), self.clock()
        )
        return ticket

    def redeem_ticket(self, prefix: str, ticket: str) -> Ticket | None:
        """Single use: the ticket is consumed whatever happens next; expired after 60 s."""
        found = self.tickets.pop(ticket, None)
        if found is None or found.prefix != prefix:
            return None
        if self.clock() - found.created_at > TICKET_LIFETIME:
            return None
        return found

    # -- sockets --------------------------------------------------------------------------------

    def close_all_sockets(self, code: int, reason: str) -> int:
        handles = list(self.sockets)
        for handle in handles:
            handle.events.put_nowait(("close", (code, reason)))
        return len(handles)
