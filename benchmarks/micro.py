"""In-process measurements: per-request CPU of the middleware's own work, and session memory.

- `request_overhead_us`: CPU per request, with a cached session, for everything the middleware does
  besides moving bytes: path and cross-site checks, the resolver, the identity check, the store
  lookup, and building the upstream and browser headers (target: <= 30 µs).
- `session_bytes(n)`: memory per cached session with `n` users in `MemorySessionStore` (tracemalloc,
  so the number is the store's own, not the allocator's slack).

Run alone: `python -m benchmarks.micro`.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection

from qlik_sso_middleware import HeaderAuth, QlikIdentity, QlikSSO, QlikTarget
from qlik_sso_middleware.proxy.guards import check_cross_site
from qlik_sso_middleware.proxy.headers import response_headers
from qlik_sso_middleware.proxy.request import ProxiedRequest
from qlik_sso_middleware.sessions import session_key
from qlik_sso_middleware.stores.base import QlikSession
from qlik_sso_middleware.stores.memory import MemorySessionStore

# What Chrome sends for an XHR to Qlik's content API, with the app's own session cookie.
_BROWSER_HEADERS = [
    (b"host", b"app.example.com"),
    (b"connection", b"keep-alive"),
    (b"sec-ch-ua", b'"Chromium";v="130", "Not?A_Brand";v="99"'),
    (b"accept", b"application/json, text/plain, */*"),
    (b"sec-ch-ua-mobile", b"?0"),
    (
        b"user-agent",
        b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36",
    ),
    (b"sec-fetch-site", b"same-origin"),
    (b"sec-fetch-mode", b"cors"),
    (b"sec-fetch-dest", b"empty"),
    (b"referer", b"https://app.example.com/dashboard"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"cookie", b"app_user=alice; csrftoken=abcdefabcdefabcdef; theme=dark"),
    # Qlik's clients send the xrfkey twice, query and header; the proxy re-keys the pair.
    (b"x-qlik-xrfkey", b"abcdefghijklmnop"),
]
_UPSTREAM_RESPONSE = [
    (b"content-type", b"application/json; charset=utf-8"),
    (b"content-length", b"1024"),
    (b"cache-control", b"no-cache"),
    (b"date", b"Fri, 27 Nov 2026 23:00:00 GMT"),
    (b"server", b"Microsoft-HTTPAPI/2.0"),
    (b"x-frame-options", b"SAMEORIGIN"),
]


async def _cookie_resolver(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.cookies.get("app_user")
    return QlikIdentity("BENCH", user) if user else None


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "path": "/sso/api/v1/apps/5e1a2b3c-aaaa-bbbb-cccc-1234567890ab/data/layout",
        "raw_path": b"/sso/api/v1/apps/5e1a2b3c-aaaa-bbbb-cccc-1234567890ab/data/layout",
        "query_string": b"xrfkey=abcdefghijklmnop",
        "headers": list(_BROWSER_HEADERS),
        "client": ("10.0.0.7", 51234),
        "server": ("10.0.0.1", 443),
    }


async def _one_request(sso: QlikSSO, scope: dict[str, Any]) -> None:
    """The middleware's per-request work on a cached session, in the order the proxy does it."""
    upstream = sso.upstream_for_path(scope["path"])
    assert upstream is not None
    req = ProxiedRequest(scope, upstream.paths.check(scope["raw_path"]))
    check_cross_site(req, sso.allowed_origins, websocket=False)
    identity = await sso.identify(HTTPConnection(scope), upstream)
    session = sso.user_session(upstream, identity, req.host)
    await session.open()
    route = upstream.route
    route.header_policy.upstream_headers(
        req.headers,
        host=req.upstream_host(route.host_header),
        added=session.identity_headers(),
        session_cookie=session.cookie_header(),
        forwarded_for=req.forwarded_for(route.trusted_proxies),
        forwarded_proto=req.scheme.encode("ascii"),
    )
    route.origin + route.base_path + req.sub_path + req.upstream_query().decode("ascii")
    response_headers(_UPSTREAM_RESPONSE)


async def request_overhead_us(iterations: int = 20_000) -> float:
    """CPU µs per request for identity + store + header work with a cached session (median of 5)."""
    target = QlikTarget("http://qlik.internal:80", prefix="sso", auth=HeaderAuth("hdr-usr"))
    sso = QlikSSO(target, resolver=_cookie_resolver, store=MemorySessionStore())
    upstream = sso.upstreams[0]
    identity = QlikIdentity("BENCH", "alice")
    await sso.store.set(
        session_key(upstream, identity),
        QlikSession("X-Qlik-Session-sso-HTTP", "0" * 32, identity.user_key(), time.time()),
        600,
    )
    # Scopes are built beforehand: making them is the ASGI server's work, not the middleware's.
    rounds = max(1, iterations // 5)
    samples = []
    for _ in range(5):
        scopes = [_scope() for _ in range(rounds)]
        started = time.process_time()
        for scope in scopes:
            await _one_request(sso, scope)
        samples.append((time.process_time() - started) / rounds * 1e6)
    await sso.aclose()
    return sorted(samples)[len(samples) // 2]


async def resolver_us(iterations: int = 20_000) -> float:
    """CPU µs per request of the benchmark app's own resolver alone (its share of the above)."""
    rounds = max(1, iterations // 5)
    samples = []
    for _ in range(5):
        scopes = [_scope() for _ in range(rounds)]
        started = time.process_time()
        for scope in scopes:
            await _cookie_resolver(HTTPConnection(scope))
        samples.append((time.process_time() - started) / rounds * 1e6)
    return sorted(samples)[len(samples) // 2]


def session_bytes(users: int = 100_000) -> float:
    """Bytes of memory per cached session in `MemorySessionStore` with `users` distinct users."""
    target = QlikTarget("https://qlik.internal", prefix="sso")
    key_prefix = f"{target.key}|"

    async def fill() -> MemorySessionStore:
        store = MemorySessionStore(max_entries=users)
        for i in range(users):
            user = QlikIdentity("ACME", f"user{i:07d}")
            # Qlik session ids are GUIDs (36 characters).
            cookie = f"{i:08x}-1f2e-4d3c-8b9a-{i:012x}"
            session = QlikSession("X-Qlik-Session-sso", cookie, user.user_key(), time.time())
            await store.set(key_prefix + user.user_key(), session, 1500.0)
        return store

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = asyncio.run(fill())
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(store) == users
    return (after - before) / users


def _report(name: str, func: Callable[[], float], unit: str) -> None:
    print(f"{name}: {func():.1f} {unit}")


if __name__ == "__main__":
    _report("request overhead", lambda: asyncio.run(request_overhead_us()), "µs CPU")
    _report("  of which the app's resolver", lambda: asyncio.run(resolver_us()), "µs CPU")
    _report("memory per cached session (100k users)", session_bytes, "bytes")
