"""The users API subset the library needs: look a user up, create one, and "who am I".

- `GET /api/v1/users?filter=subject eq "…"` (also `email eq`, `id eq`; one condition; other
  SCIM filters answer 400 here) -> `{"data": [...]}` (Tier 1).
- `POST /api/v1/users {subject, name?, email?, status?}` -> 201 (Tier 2); 409 for a subject that
  exists; 413 above 500 kB.
- `GET /api/v1/users/{id}` -> 200 / 404; `GET /api/v1/users/me` -> 301 to the caller's user.

Listing and creating users needs a machine token (client credentials) with an admin scope
(`admin_classic` or `admin.users`) [inferred: the exact scope-to-endpoint map is not published].
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .answers import QlikCloudError
from .state import CloudSession, CloudState
from .tenant import ADMIN_SCOPES, CloudUser

__all__ = ["Principal", "UsersApi"]

_FILTER = re.compile(r'^\s*(subject|email|id)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
MAX_USER_BODY = 500 * 1024


@dataclass(frozen=True)
class Principal:
    """Who a request is from: a user (token or cookie session) or a machine (client credentials)."""

    user: CloudUser | None
    client_id: str | None
    scopes: tuple[str, ...]
    session: CloudSession | None = None

    @property
    def is_admin_machine(self) -> bool:
        return self.user is None and bool(ADMIN_SCOPES.intersection(self.scopes))


def _forbidden() -> QlikCloudError:
    return QlikCloudError(403, "USERS-3", "Forbidden", "an admin scope is required")


class UsersApi:
    """Handlers for `/api/v1/users…`; each returns (status, JSON, extra headers)."""

    def __init__(self, state: CloudState, base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    def _json(self, user: CloudUser) -> dict[str, Any]:
        return user.as_json(self.state.tenant_id, self.base_url)

    def me(self, principal: Principal) -> tuple[int, Any, list[tuple[str, str]]]:
        if principal.user is None:
            raise QlikCloudError(401, "USERS-1", "Unauthorized", "no user is signed in")
        location = f"{self.base_url}/api/v1/users/{principal.user.id}"
        return 301, {}, [("location", location)]

    def get(self, principal: Principal, user_id: str) -> tuple[int, Any, list[tuple[str, str]]]:
        own = principal.user is not None and principal.user.id == user_id
        if not own and not principal.is_admin_machine:
            raise _forbidden()
        user = self.state.user_by_id(user_id)
        if user is None:
            raise QlikCloudError(404, "USERS-7", "Not found")
        return 200, self._json(user), []

    def lookup(self, principal: Principal, filter_text: str | None) -> tuple[int, Any, list[Any]]:
        if not principal.is_admin_machine:
            raise _forbidden()
        users = list(self.state.users_by_subject.values())
        if filter_text:
            match = _FILTER.match(filter_text)
            if match is None:
                raise QlikCloudError(
                    400, "USERS-4", "Bad request", "unsupported filter (simulator)"
                )
            try:
                key, value = match[1].lower(), json.loads(f'"{match[2]}"')
            except ValueError:
                raise QlikCloudError(400, "USERS-4", "Bad request", "bad string escape") from None
            if key == "email":
                users = [u for u in users if u.email.lower() == value.lower()]
            else:
                users = [u for u in users if getattr(u, key) == value]
        return 200, {"data": [self._json(u) for u in users]}, []

    def create(self, principal: Principal, body: Any) -> tuple[int, Any, list[Any]]:
        if not principal.is_admin_machine:
            raise _forbidden()
        if not isinstance(body, dict):
            raise QlikCloudError(400, "USERS-4", "Bad request", "expected a JSON object")
        subject = body.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            raise QlikCloudError(400, "USERS-4", "Bad request", "subject is required")
        for name in ("name", "email"):
            if name in body and not isinstance(body[name], str):
                raise QlikCloudError(400, "USERS-4", "Bad request", f"{name} must be a string")
        status = body.get("status", "invited")
        if status != "invited":
            raise QlikCloudError(400, "USERS-4", "Bad request", "status may only be invited")
        if subject in self.state.users_by_subject:
            raise QlikCloudError(409, "USERS-6", "Conflict", "a user with this subject exists")
        user = self.state.add_user(
            CloudUser(
                subject=subject,
                name=body.get("name") or subject,
                email=body.get("email", ""),
                status="invited",
            )
        )
        return 201, self._json(user), []
