"""Resolvers through real requests: Starlette's auth user, trusted headers, callables, tenants."""

from __future__ import annotations

import httpx2 as httpx
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from qlik_sso_middleware import (
    ChainResolver,
    QlikIdentity,
    Resolved,
    ScopeUserResolver,
    Tenant,
    TenantResolver,
    TrustedHeaderResolver,
)
from qlik_sso_middleware.resolvers.base import Resolution, Resolver, as_resolver

from ..servers import serve


def probe_app(resolver: Resolver, *, wrap: list[Middleware] | None = None) -> ASGIApp:
    """An app whose one route answers what `resolver` makes of the request."""

    async def who(request: HTTPConnection) -> JSONResponse:
        result = await resolver.resolve(request)
        if isinstance(result, Resolved):
            return JSONResponse({"user": str(result.identity), "target": result.target})
        return JSONResponse({"user": str(result) if result else None})

    return Starlette(routes=[Route("/who", who)], middleware=wrap or [])


class CookieBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.cookies.get("session_user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


async def who(
    app: ASGIApp, *, cookies: dict[str, str] | None = None, **kwargs: object
) -> dict[str, object]:
    async with serve(app) as url, httpx.AsyncClient(base_url=url, cookies=cookies) as client:
        response = await client.get("/who", **kwargs)  # type: ignore[arg-type]
        return dict(response.json())


async def test_scope_user_from_starlette_authentication() -> None:
    app = probe_app(
        ScopeUserResolver("ACME"),
        wrap=[Middleware(AuthenticationMiddleware, backend=CookieBackend())],
    )
    assert await who(app, cookies={"session_user": "alice"}) == {"user": "ACME\\alice"}
    assert await who(app) == {"user": None}


async def test_trusted_header_only_from_trusted_peers() -> None:
    trusted = probe_app(TrustedHeaderResolver("x-remote-user", user_directory="ACME"))
    assert await who(trusted, headers={"x-remote-user": "alice"}) == {"user": "ACME\\alice"}
    # The peer (127.0.0.1) is not in the trusted networks: the header means nothing.
    untrusted = probe_app(
        TrustedHeaderResolver(
            "x-remote-user", user_directory="ACME", trusted_networks=["10.0.0.0/8"]
        )
    )
    assert await who(untrusted, headers={"x-remote-user": "alice"}) == {"user": None}
    # Duplicates are ambiguous: refused.
    assert await who(trusted, headers=[("x-remote-user", "alice"), ("x-remote-user", "bob")]) == {
        "user": None
    }


async def test_sync_and_async_callables_and_chains() -> None:
    def sync_resolver(conn: HTTPConnection) -> Resolution:
        return QlikIdentity("ACME", "sync") if conn.query_params.get("s") else None

    async def async_resolver(conn: HTTPConnection) -> Resolution:
        return QlikIdentity("ACME", "async") if conn.query_params.get("a") else None

    chain = ChainResolver([sync_resolver, async_resolver])
    app = probe_app(chain)
    assert await who(app, params={"s": "1", "a": "1"}) == {"user": "ACME\\sync"}
    assert await who(app, params={"a": "1"}) == {"user": "ACME\\async"}
    assert await who(app) == {"user": None}
    assert isinstance(as_resolver(sync_resolver), Resolver)


async def test_tenants_bind_directory_and_target_by_host() -> None:
    resolver = TenantResolver(
        {"a.localhost": Tenant("TENANT_A", "ta"), "b.localhost": Tenant("TENANT_B", "tb")},
        lambda conn: QlikIdentity("ANY", conn.cookies["user"]) if "user" in conn.cookies else None,
    )
    app = probe_app(resolver)
    a = await who(app, headers={"host": "a.localhost"}, cookies={"user": "alice"})
    b = await who(app, headers={"host": "b.localhost"}, cookies={"user": "alice"})
    unknown = await who(app, headers={"host": "c.localhost"}, cookies={"user": "alice"})
    assert a == {"user": "TENANT_A\\alice", "target": "ta"}
    assert b == {"user": "TENANT_B\\alice", "target": "tb"}
    assert unknown == {"user": None}


async def test_tenant_replay_of_another_tenants_user_is_nobody() -> None:
    """An inner resolver that knows the user's tenant directory gets cross-host replays refused."""
    resolver = TenantResolver(
        {"a.localhost": Tenant("TENANT_A", "ta"), "b.localhost": Tenant("TENANT_B", "tb")},
        lambda conn: QlikIdentity("TENANT_A", "alice"),  # alice's session says tenant A
    )
    app = probe_app(resolver)
    assert await who(app, headers={"host": "a.localhost"}) == {
        "user": "TENANT_A\\alice",
        "target": "ta",
    }
    assert await who(app, headers={"host": "b.localhost"}) == {"user": None}
    bound = TenantResolver(
        {"a.localhost": Tenant("TENANT_A", "ta"), "b.localhost": Tenant("TENANT_B", "tb")},
        lambda conn: Resolved(QlikIdentity("ANY", "alice"), "ta"),
    )
    assert await who(probe_app(bound), headers={"host": "b.localhost"}) == {"user": None}
