"""Optional Prometheus metrics (extra `[metrics]`), wired from the outside: zero cost when unused.

    metrics = QlikMetrics()                                 # its own CollectorRegistry
    target = QlikTarget(url, auth=metrics.wrap_auth(HeaderAuth()))
    sso = QlikSSO(target, resolver=..., store=metrics.wrap_store(MemorySessionStore()))
    app = metrics.wrap_app(QlikSSOMiddleware(app, sso=sso), sso)
    body, content_type = metrics.render()                  # serve it on your metrics path

Nothing in the core knows about metrics: the auth strategy, the store and the ASGI app are wrapped
by delegating objects, so an app that does not build a `QlikMetrics` pays nothing.

| metric | type | labels |
|---|---|---|
| `qlik_sso_logins_total` | counter | `result` = ok / failed |
| `qlik_sso_session_lookups_total` | counter | `result` = hit / miss (cache of Qlik sessions) |
| `qlik_sso_store_errors_total` | counter | `operation` |
| `qlik_sso_upstream_responses_total` | counter | `status_class` = 2xx / 3xx / 4xx / 5xx |
| `qlik_sso_upstream_latency_seconds` | histogram | time to the response head, mount paths only |
| `qlik_sso_open_websockets` | gauge | engine WebSockets currently open |

No label ever holds a user, path or cookie (unbounded cardinality, and personal data).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import QlikError, StoreUnavailable
from .identity import QlikIdentity
from .stores.base import QlikSession, SessionStore

if TYPE_CHECKING:
    from .auth.base import AuthStrategy, LoginContext
    from .core import QlikSSO

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "qlik_sso_middleware.metrics needs prometheus-client: "
        "pip install 'qlik-sso-middleware[metrics]'"
    ) from exc

__all__ = ["QlikMetrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class QlikMetrics:
    """The collectors, in a registry of their own (so several apps or tests never collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.logins = Counter("qlik_sso_logins", "Qlik logins", ["result"], registry=r)
        self.lookups = Counter(
            "qlik_sso_session_lookups", "Qlik session cache lookups", ["result"], registry=r
        )
        self.store_errors = Counter(
            "qlik_sso_store_errors", "Session store failures", ["operation"], registry=r
        )
        self.responses = Counter(
            "qlik_sso_upstream_responses",
            "Responses on the Qlik mount paths",
            ["status_class"],
            registry=r,
        )
        self.latency = Histogram(
            "qlik_sso_upstream_latency_seconds",
            "Time to the response head on the Qlik mount paths",
            buckets=_BUCKETS,
            registry=r,
        )
        self.websockets = Gauge("qlik_sso_open_websockets", "Engine WebSockets open", registry=r)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def wrap_auth(self, auth: AuthStrategy) -> AuthStrategy:
        return _CountingAuth(auth, self)

    def wrap_store(self, store: SessionStore) -> SessionStore:
        return _CountingStore(store, self)

    def wrap_app(self, app: ASGIApp, sso: QlikSSO) -> ASGIApp:
        """Measure responses and WebSockets on `sso`'s mount paths (others pass untouched)."""
        return _MeasuringApp(app, sso, self)


class _CountingAuth:
    """Delegates to the real strategy; counts logins."""

    def __init__(self, inner: AuthStrategy, metrics: QlikMetrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.identity_headers = inner.identity_headers

    def __repr__(self) -> str:
        return repr(self._inner)

    def check_identity(self, identity: QlikIdentity) -> None:
        self._inner.check_identity(identity)

    async def login(self, identity: QlikIdentity, ctx: LoginContext) -> QlikSession:
        try:
            session = await self._inner.login(identity, ctx)
        except QlikError:
            self._metrics.logins.labels("failed").inc()
            raise
        self._metrics.logins.labels("ok").inc()
        return session

    async def logout(
        self, identity: QlikIdentity, session: QlikSession | None, ctx: LoginContext
    ) -> None:
        await self._inner.logout(identity, session, ctx)

    def upstream_headers(self, identity: QlikIdentity) -> list[tuple[bytes, bytes]]:
        return self._inner.upstream_headers(identity)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CountingStore:
    """Delegates to the real store; counts lookups and `StoreUnavailable` per operation."""

    def __init__(self, inner: SessionStore, metrics: QlikMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def _failed(self, operation: str) -> None:
        self._metrics.store_errors.labels(operation).inc()

    async def get(self, key: str) -> QlikSession | None:
        try:
            session = await self._inner.get(key)
        except StoreUnavailable:
            self._failed("get")
            raise
        self._metrics.lookups.labels("hit" if session is not None else "miss").inc()
        return session

    async def set(self, key: str, session: QlikSession, ttl: float) -> None:
        try:
            await self._inner.set(key, session, ttl)
        except StoreUnavailable:
            self._failed("set")
            raise

    async def delete(self, key: str) -> QlikSession | None:
        try:
            return await self._inner.delete(key)
        except StoreUnavailable:
            self._failed("delete")
            raise

    async def keys_for_user(self, user_key: str) -> list[str]:
        try:
            return await self._inner.keys_for_user(user_key)
        except StoreUnavailable:
            self._failed("keys_for_user")
            raise

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return self._lock(key)

    @asynccontextmanager
    async def _lock(self, key: str) -> AsyncIterator[None]:
        try:
            manager = self._inner.lock(key)
            await manager.__aenter__()
        except StoreUnavailable:
            self._failed("lock")
            raise
        try:
            yield
        except BaseException as exc:
            if not await manager.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await manager.__aexit__(None, None, None)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _MeasuringApp:
    def __init__(self, app: ASGIApp, sso: QlikSSO, metrics: QlikMetrics) -> None:
        self.app = app
        self.sso = sso
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or self.sso.upstream_for_path(scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await self._websocket(scope, receive, send)
            return
        started = time.perf_counter()

        async def measuring_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.latency.observe(time.perf_counter() - started)
                self.metrics.responses.labels(f"{message['status'] // 100}xx").inc()
            await send(message)

        await self.app(scope, receive, measuring_send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened = False

        async def measuring_send(message: Message) -> None:
            nonlocal opened
            if message["type"] == "websocket.accept" and not opened:
                opened = True
                self.metrics.websockets.inc()
            await send(message)

        try:
            await self.app(scope, receive, measuring_send)
        finally:
            if opened:
                self.metrics.websockets.dec()
