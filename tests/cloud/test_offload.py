"""Offload mode with a Qlik Cloud mount: the front proxy's auth sub-request is refused for it, so
the front proxy sends those requests through the app's in-process path (which serves them)."""

from __future__ import annotations

import httpx2 as httpx

from qlik_sso_middleware import FrontProxy, QlikSSOMiddleware
from qlik_sso_middleware.testing.cloud import CloudSimulator, SigningKeyPair
from tests.cloud.apps import TOKEN_URL, cloud_app, same_origin
from tests.offload.front import SECRET
from tests.servers import serve


async def test_a_cloud_mount_is_never_granted_to_the_front_proxy(
    live_tenant: CloudSimulator, signing_key: SigningKeyPair
) -> None:
    inner, sso = cloud_app(live_tenant, signing_key)
    app = QlikSSOMiddleware(inner.app, sso=sso, front_proxy=FrontProxy(SECRET))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        cookie = {"Cookie": "app_user=alice"}
        host = url.removeprefix("http://")
        answers = [
            await client.get(
                "/_qlik_sso/auth",
                headers={
                    "Host": host,
                    "X-Qlik-SSO-Secret": SECRET,
                    "X-Original-URI": uri,
                    "X-Original-Method": method,
                    **cookie,
                },
            )
            for uri, method in (("/qlik-cloud/api/v1/users/me", "GET"), (TOKEN_URL, "POST"))
        ]
        in_process = await client.post(TOKEN_URL, headers={**same_origin(url), **cookie})
    assert [a.status_code for a in answers] == [403, 403]
    assert not [k for a in answers for k in a.headers if k.lower() == "x-qlik-sso-cookie"]
    assert in_process.status_code == 200
    assert [r.path for r in live_tenant.requests] == ["/oauth/token"]
