"""A user's Qlik session: cached once per user, renewed when Qlik forgets it, shared by every
request and WebSocket of the user.

- `manager`: `SessionManager`, the store as a cache with single-flight logins and login slots;
- `target`: `TargetSessions`, every user's session on one target (login, renewal, adoption, spare
  sessions, CSRF token, logout);
- `user`: `UserSession`, one request's view of it, as the proxy's forwarders use it;
- `csrf`: `CsrfTokens`, the WebSocket CSRF token per session.
"""

from __future__ import annotations

from .manager import SessionManager
from .target import TargetSessions, session_key
from .user import UserSession

__all__ = ["SessionManager", "TargetSessions", "UserSession", "session_key"]
