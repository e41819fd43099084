"""One app, two tenants: one on Qlik Sense, one on Qlik Cloud, chosen by `TenantResolver`."""

from __future__ import annotations

import httpx2 as httpx
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from qlik_sso_middleware import (
    QlikIdentity,
    QlikSSOMiddleware,
    QlikTarget,
    Tenant,
    TenantResolver,
)
from qlik_sso_middleware.testing import QlikSimulator
from qlik_sso_middleware.testing.cloud import CloudSimulator, CloudUser, SigningKeyPair
from tests.cloud.conftest import target_for
from tests.servers import serve

TENANTS = {
    "a.localhost": Tenant("TENANT_A", target="sso"),
    "b.localhost": Tenant("TENANT_B", target="b"),
}


def user(conn: HTTPConnection) -> QlikIdentity | None:
    name = conn.cookies.get("app_user")
    return QlikIdentity("ANY", name) if name else None


def host(name: str, url: str) -> dict[str, str]:
    port = url.rsplit(":", 1)[1]
    return {
        "host": f"{name}:{port}",
        "origin": f"http://{name}:{port}",
        "sec-fetch-site": "same-origin",
    }


async def test_a_cloud_tenants_user_gets_a_cloud_token_and_nothing_of_the_other_tenant(
    simulator: QlikSimulator, live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    live_tenant.add_user(CloudUser("TENANT_B\\bob", "Bob", "bob@example.com"))
    cloud = target_for(live_tenant, signing_key, name="b", mount_path="/b/")
    app = QlikSSOMiddleware(
        Starlette(),
        targets=[QlikTarget(simulator.proxy_url, prefix="sso"), cloud],
        resolver=TenantResolver(TENANTS, user),
    )
    async with serve(app) as url:

        async def call(method: str, path: str, tenant: str, name: str) -> httpx.Response:
            async with httpx.AsyncClient(base_url=url, cookies={"app_user": name}) as client:
                return await client.request(method, path, headers=host(tenant, url))

        bob = await call("POST", "/b/access-token", "b.localhost", "bob")
        alice_there = await call("POST", "/b/access-token", "a.localhost", "alice")
        alice_home = await call("GET", "/sso/qps/user", "a.localhost", "alice")
        bob_sense = await call("GET", "/sso/qps/user", "b.localhost", "bob")
    assert bob.status_code == 200 and bob.json()["access_token"]
    assert live_tenant.tokens_issued("TENANT_B\\bob") == 1
    assert alice_there.status_code == 403  # a Qlik Sense tenant's user asked for the Cloud one
    assert alice_home.json()["userId"] == "alice"
    assert bob_sense.status_code == 403
    assert live_tenant.tokens_issued() == 1
