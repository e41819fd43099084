"""`TargetSessions`: every user's Qlik session on one target, and everything that keeps it alive.

Logins (once per user, single-flight, within the login slots), renewal after Qlik forgot a session,
adopting a session Qlik reissued, ending a spare one (it would hold one of the user's five Qlik
session slots), forgetting, the WebSocket CSRF token, and logout. `UserSession` is the per-request
face of this object; `QlikSSO` owns one per target.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import httpx2 as httpx

from ..auth.answers import REDIRECTS, session_cookie_from
from ..errors import QlikError, QlikTimeout, QlikUnavailable
from ..identity import QlikIdentity
from ..stores.base import QlikSession
from ..upstream import Upstream
from .csrf import CsrfTokens, Probe
from .manager import SessionManager

__all__ = ["TargetSessions", "session_key"]

logger = logging.getLogger("qlik_sso_middleware")


def session_key(upstream: Upstream, identity: QlikIdentity) -> str:
    """The store key of `identity`'s session on `upstream` (Qlik server + virtual proxy + user)."""
    return f"{upstream.target.key}|{identity.user_key()}"


class TargetSessions:
    """The sessions of one `Upstream`, kept in `manager`'s store."""

    def __init__(self, upstream: Upstream, manager: SessionManager) -> None:
        self.upstream = upstream
        self.manager = manager
        self.csrf = CsrfTokens()
        self.key_prefix = upstream.target.key + "|"
        self._ttl = upstream.target.session_ttl

    @property
    def name(self) -> str:
        return self.upstream.target.name or ""

    def key(self, identity: QlikIdentity) -> str:
        return self.key_prefix + identity.user_key()

    async def obtain(self, identity: QlikIdentity, host: str) -> QlikSession:
        """The user's cached session, else a new one from the strategy's login.

        A cached session made while the user had other attributes (a group removed, a role added)
        is replaced by a new login and ended: Qlik reads attributes only when a session is made.
        """
        auth = self.upstream.target.auth
        fingerprint = identity.fingerprint

        async def login() -> QlikSession:
            async with self.manager.login_slot():
                try:
                    session = await auth.login(identity, self.upstream.login_context(host))
                except QlikError as exc:
                    logger.warning("Qlik login failed for %s on %s: %s", identity, self.name, exc)
                    raise
            logger.info("Qlik login: %s on %s", identity, self.name)
            return dataclasses.replace(session, fingerprint=fingerprint)

        async def retire(stale: QlikSession) -> None:
            logger.info("attributes of %s changed: ended their previous Qlik session", identity)
            self.csrf.forget(stale.cookie_value)
            await self._end_session(identity, stale, host)

        return await self.manager.obtain(
            self.key(identity), login, self._ttl, fingerprint=fingerprint, retire=retire
        )

    async def current(self, identity: QlikIdentity) -> QlikSession | None:
        """The session cached for the user right now (another request may have replaced ours)."""
        return await self.manager.get(self.key(identity))

    async def renew(self, identity: QlikIdentity, host: str, stale: QlikSession) -> QlikSession:
        """Qlik no longer honours `stale`: drop it and log in again (shared by concurrent callers)."""
        logger.info("Qlik session of %s on %s is gone; renewing", identity, self.name)
        await self.manager.invalidate(self.key(identity), stale)
        return await self.obtain(identity, host)

    async def adopt(
        self, identity: QlikIdentity, stale: QlikSession, renewed: str, host: str
    ) -> QlikSession:
        """Qlik answered a request made with `stale` by issuing the session `renewed` (it
        re-authenticated the user by header, e.g. after a restart). The first such session is
        kept; one that a concurrent request brought in afterwards is spare and is ended at once.
        Returns the session now cached for the user.
        """
        fresh = dataclasses.replace(stale, cookie_value=renewed, created_at=time.time())
        kept = await self.manager.replace(self.key(identity), stale, fresh, self._ttl)
        if kept is not fresh:
            await self._end_session(identity, fresh, host)
        return kept

    async def _end_session(self, identity: QlikIdentity, session: QlikSession, host: str) -> None:
        """End exactly `session` at Qlik (a spare one, or one made for old attributes), so that it
        does not hold one of the user's five Qlik session slots. Best effort: logged, not raised."""
        # The personal API ends exactly the session whose cookie is presented.
        base, headers = self.upstream.personal_api(identity, session, host)
        try:
            await self.upstream.client.delete(base + "user", headers=headers)
        except Exception as exc:
            logger.debug("could not end a Qlik session of %s: %s", identity, type(exc).__name__)
        else:
            logger.debug("ended a Qlik session of %s on %s", identity, self.name)

    async def forget(self, identity: QlikIdentity, stale: QlikSession) -> None:
        """Qlik ended `stale`: the user's next request logs in again."""
        await self.manager.invalidate(self.key(identity), stale)

    async def csrf_token(self, identity: QlikIdentity, session: QlikSession, host: str) -> Probe:
        """The session's `qlik-csrf-token`, fetched once per session (one probe at a time).

        Asking for it is also a cheap probe of the session: when Qlik re-authenticates the user by
        header and issues a new cookie it is adopted; when Qlik redirects to its login, the session
        is renewed once. Returns the session in use afterwards and its token (None when this Qlik
        has no CSRF endpoint: releases before November 2024 need none).
        """
        cached = self.csrf.cached(session.cookie_value)
        if cached is not None:
            return session, cached
        return await self.csrf.probe(
            session.cookie_value, lambda: self._fetch_csrf_token(identity, session, host)
        )

    async def _fetch_csrf_token(
        self, identity: QlikIdentity, session: QlikSession, host: str
    ) -> Probe:
        for attempt in (1, 2):
            base, headers = self.upstream.personal_api(identity, session, host)
            try:
                response = await self.upstream.client.get(base + "csrftoken", headers=headers)
            except httpx.TimeoutException as exc:
                raise QlikTimeout("Qlik did not answer qps/csrftoken in time") from exc
            except httpx.TransportError as exc:
                raise QlikUnavailable(f"Qlik unreachable at {self.upstream.target.url}") from exc
            if attempt == 1 and response.status_code in REDIRECTS:
                session = await self.renew(identity, host, session)
                continue
            renewed = session_cookie_from(
                response.headers.get_list("set-cookie"), session.cookie_name
            )
            if renewed is not None and renewed != session.cookie_value:
                session = await self.adopt(identity, session, renewed, host)
                if session.cookie_value != renewed:
                    # Qlik's answer belongs to a spare session (now ended): ask with the kept one.
                    if attempt == 1:
                        continue
                    return session, None
            token: str | None = response.headers.get("qlik-csrf-token")
            # Qlik answers 204 (gopherciser, Qlik's load tester, expects exactly that): any 2xx.
            if not 200 <= response.status_code < 300 or not token:
                return session, None
            self.csrf.remember(session.cookie_value, token)
            return session, token
        return session, None

    async def logout(self, identity: QlikIdentity, host: str) -> int:
        """End the user's sessions on this target and drop them from the cache.

        Qlik is told even when nothing was cached (a strategy with the QPS API then ends every
        session of the user). Returns how many cached sessions were dropped; raises the last
        `QlikError` after trying them all.
        """
        ctx = self.upstream.login_context(host)
        cached = await self.manager.drop_user(identity.user_key(), self.key_prefix)
        failure: QlikError | None = None
        sessions: list[QlikSession | None] = [s for _, s in cached] or [None]
        for session in sessions:
            if session is not None:
                self.csrf.forget(session.cookie_value)
            try:
                await self.upstream.target.auth.logout(identity, session, ctx)
            except QlikError as exc:
                failure = exc
            except Exception as exc:
                failure = QlikError(f"logout of {identity} on {self.name} failed")
                failure.__cause__ = exc
        logger.info("Qlik logout: %s on %s", identity, self.name)
        if failure is not None:
            raise failure
        return len(cached)
