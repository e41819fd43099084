"""`UserProvisioner`: make sure a user exists in the tenant before impersonating it.

OAuth impersonation "requires that users already exist in the tenant" (qlik.dev changelog,
OAuth M2M impersonation). On the first sight of a subject in this process the provisioner looks
it up (`GET /api/v1/users?filter=subject eq "…"`, Tier 1) and creates it when missing
(`POST /api/v1/users`, Tier 2; a 409 means another instance was quicker, which is fine). Both
calls use a machine token of the admin client (client credentials, an admin scope), cached until
a minute before it expires and fetched once for all concurrent callers.

Known subjects are remembered (bounded, least recently seen dropped) so a returning user costs
nothing; `forget(subject)` drops one (e.g. after the tenant answered "no such user" anyway).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CloudGrantNotAllowed, CloudRejected, QlikUnavailable
from ._http import CloudAnswer, CloudHttp
from .identity import CloudIdentity
from .oauth import AccessToken, OAuthTokenClient
from .pacer import RequestPacer

__all__ = ["CloudUserRecord", "UserProvisioner"]

#: A machine token is renewed when it has less than this many seconds left.
TOKEN_MARGIN = 60.0


@dataclass(frozen=True)
class CloudUserRecord:
    """A tenant user as the users API returns it."""

    id: str
    subject: str
    name: str
    email: str
    status: str

    @classmethod
    def from_json(cls, data: Any) -> CloudUserRecord:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise CloudRejected("Qlik Cloud's users API answered without a user id")
        return cls(
            id=data["id"],
            subject=str(data.get("subject", "")),
            name=str(data.get("name", "")),
            email=str(data.get("email", "")),
            status=str(data.get("status", "")),
        )


class UserProvisioner:
    """Looks users up and creates them with the admin client's machine token."""

    def __init__(
        self,
        http: CloudHttp,
        admin: OAuthTokenClient,
        *,
        lookups: RequestPacer,
        creations: RequestPacer,
        clock: Callable[[], float] = time.time,
        remember: int = 10_000,
    ) -> None:
        self._http = http
        self._admin = admin
        self._lookups = lookups
        self._creations = creations
        self._clock = clock
        self._remember = remember
        self._known: OrderedDict[str, None] = OrderedDict()
        self._token: AccessToken | None = None
        self._token_lock = asyncio.Lock()
        self._inflight: dict[str, asyncio.Future[CloudUserRecord]] = {}

    def forget(self, subject: str) -> None:
        self._known.pop(subject, None)

    def knows(self, subject: str) -> bool:
        return subject in self._known

    async def ensure(self, identity: CloudIdentity) -> CloudUserRecord | None:
        """Create `identity` in the tenant unless known; the new or found record, None if known."""
        subject = identity.subject
        if subject in self._known:
            self._known.move_to_end(subject)
            return None
        task = self._inflight.get(subject)
        if task is None:  # one look-up per subject, whoever else asks meanwhile
            task = asyncio.ensure_future(self._provision(identity))
            self._inflight[subject] = task
            task.add_done_callback(lambda _: self._inflight.pop(subject, None))
        # A caller that gives up (cancelled) must not cancel the look-up the others await.
        return await asyncio.shield(task)

    async def _provision(self, identity: CloudIdentity) -> CloudUserRecord:
        record = await self.find(identity.subject) or await self.create(identity)
        self._known[identity.subject] = None
        while len(self._known) > self._remember:
            self._known.popitem(last=False)
        return record

    async def find(self, subject: str) -> CloudUserRecord | None:
        """The user with `subject`, or None."""
        params = {"filter": f"subject eq {json.dumps(subject, ensure_ascii=False)}", "limit": "1"}
        answer = await self._admin_call(
            self._lookups, "GET", "/api/v1/users", "GET /api/v1/users (look-up)", params=params
        )
        data = answer.json()
        users = data.get("data") if isinstance(data, dict) else None
        if answer.status != 200 or not isinstance(users, list):
            raise self._refusal(answer, "GET /api/v1/users (look-up)")
        matches = [u for u in users if isinstance(u, dict) and u.get("subject") == subject]
        return CloudUserRecord.from_json(matches[0]) if matches else None

    async def create(self, identity: CloudIdentity) -> CloudUserRecord:
        """Create `identity` (name and e-mail when known); finds it instead when it exists."""
        body: dict[str, Any] = {"subject": identity.subject, "name": identity.display_name()}
        if identity.email:
            body["email"] = identity.email
        operation = "POST /api/v1/users (provisioning)"
        answer = await self._admin_call(
            self._creations, "POST", "/api/v1/users", operation, body=body
        )
        if answer.status == 409:
            found = await self.find(identity.subject)
            if found is not None:
                return found
        if answer.status != 201:
            raise self._refusal(answer, operation)
        return CloudUserRecord.from_json(answer.json())

    async def _admin_call(
        self,
        pacer: RequestPacer,
        method: str,
        path: str,
        operation: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
    ) -> CloudAnswer:
        for attempt in (1, 2):
            token = await self._machine_token(renew=attempt == 2)

            async def call(token: AccessToken = token) -> CloudAnswer:
                headers = {"Authorization": f"Bearer {token.value}"}
                return await self._http.request(
                    method, path, operation, json_body=body, headers=headers, params=params
                )

            answer = await pacer.send(call, lambda a: a.retry_after())
            if answer.status != 401:
                return answer
        return answer  # still 401 with a fresh token: reported by the caller

    async def _machine_token(self, *, renew: bool) -> AccessToken:
        async with self._token_lock:
            token = self._token
            if renew or token is None or not token.is_fresh(self._clock(), TOKEN_MARGIN):
                self._token = token = await self._admin.client_credentials()
            return token

    def _refusal(self, answer: CloudAnswer, operation: str) -> Exception:
        said = answer.qlik_said([self._admin.client.client_secret.reveal()])
        client = self._admin.client.client_id
        if answer.status >= 500:
            return QlikUnavailable(f"Qlik Cloud failed {operation}: {said}")
        if answer.status in (401, 403):
            return CloudGrantNotAllowed(
                f"admin OAuth client {client!r} may not {operation} ({said}): give it the "
                "client_credentials grant and an admin scope (admin_classic) in Administration > "
                "OAuth, and ask for that scope (admin_oauth scopes)",
                status=answer.status,
                code=answer.error().get("code"),
            )
        return CloudRejected(
            f"Qlik Cloud refused {operation} ({said})",
            status=answer.status,
            code=answer.error().get("code"),
        )
