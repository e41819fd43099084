"""Prometheus metrics wired from outside: logins, lookups, store errors (real store, real Qlik)."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from qlik_sso_middleware import (
    HeaderAuth,
    MemorySessionStore,
    QlikIdentity,
    QlikSession,
    QlikSSO,
    QlikSSOMiddleware,
    QlikTarget,
    StoreUnavailable,
)
from qlik_sso_middleware.metrics import QlikMetrics
from qlik_sso_middleware.testing import QlikSimulator
from tests.servers import serve


class BrokenStore(MemorySessionStore):
    """A memory store whose backend 'goes away' on demand."""

    broken = False

    async def get(self, key: str) -> QlikSession | None:
        if self.broken:
            raise StoreUnavailable("store down")
        return await super().get(key)


def resolver(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.headers.get("x-test-user")
    return QlikIdentity("ACME", user) if user else None


def value(metrics: QlikMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    found = metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if found is None else found


async def test_logins_lookups_errors_and_responses(simulator: QlikSimulator) -> None:
    metrics = QlikMetrics()
    store = BrokenStore()
    target = QlikTarget(simulator.proxy_url, auth=metrics.wrap_auth(HeaderAuth("hdr-usr")))
    sso = QlikSSO(target, resolver=resolver, store=metrics.wrap_store(store))
    app = metrics.wrap_app(QlikSSOMiddleware(Starlette(), sso=sso), sso)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        for _ in range(3):
            answer = await client.get("/sso/qps/user", headers={"x-test-user": "alice"})
            assert answer.json()["userId"] == "alice"
        assert (await client.get("/elsewhere")).status_code == 404  # not measured
        store.broken = True
        assert (
            await client.get("/sso/qps/user", headers={"x-test-user": "bob"})
        ).status_code == 503
    assert value(metrics, "qlik_sso_logins_total", {"result": "ok"}) == 1
    assert value(metrics, "qlik_sso_session_lookups_total", {"result": "hit"}) == 2
    assert value(metrics, "qlik_sso_session_lookups_total", {"result": "miss"}) >= 1
    assert value(metrics, "qlik_sso_store_errors_total", {"operation": "get"}) == 1
    assert value(metrics, "qlik_sso_upstream_responses_total", {"status_class": "2xx"}) == 3
    assert value(metrics, "qlik_sso_upstream_responses_total", {"status_class": "5xx"}) == 1
    assert value(metrics, "qlik_sso_upstream_latency_seconds_count") == 4
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    assert b"alice" not in body  # no user ever becomes a label


async def test_failed_login_is_counted() -> None:
    async with QlikSimulator() as sim:
        metrics = QlikMetrics()
        auth = metrics.wrap_auth(HeaderAuth("wrong-header"))
        sso = QlikSSO(QlikTarget(sim.proxy_url, auth=auth), resolver=resolver)
        async with serve(QlikSSOMiddleware(Starlette(), sso=sso)) as url:
            async with httpx.AsyncClient(base_url=url) as client:
                answer = await client.get("/sso/qps/user", headers={"x-test-user": "alice"})
                assert answer.status_code == 502
    assert value(metrics, "qlik_sso_logins_total", {"result": "failed"}) == 1


def test_wrapped_header_auth_still_has_its_header_stripped() -> None:
    metrics = QlikMetrics()
    sso = QlikSSO(
        QlikTarget("http://127.0.0.1:1", auth=metrics.wrap_auth(HeaderAuth("hdr-usr"))),
        resolver=resolver,
    )
    stripped = sso.header_policy.upstream_headers(
        [(b"hdr-usr", b"ACME\\admin")], host=b"x", added=[], session_cookie=b"c=1",
        forwarded_for=b"127.0.0.1", forwarded_proto=b"http", keep_content_length=False,
    )  # fmt: skip
    assert (b"hdr-usr", b"ACME\\admin") not in stripped


@pytest.fixture(autouse=True)
def _isolated() -> None:
    """Each QlikMetrics has its own registry: two in one process never collide."""
    QlikMetrics()
    QlikMetrics()
