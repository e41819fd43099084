"""examples/jwt_resolver: identity and groups from the app's JWT, sessions via the QPS session API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx2 as httpx
import jwt
import pytest

from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

from .driver import assert_visit, running, visit

SECRET = "jwt-example-test-secret-of-32-bytes-plus"


@pytest.fixture
async def sim() -> AsyncIterator[QlikSimulator]:
    async with QlikSimulator([VirtualProxy(prefix="jwt", auth="ticket")]) as simulator:
        yield simulator


def env(sim: QlikSimulator) -> dict[str, str]:
    assert sim.api_url is not None and sim.certificates is not None
    return {
        "QLIK_URL": sim.proxy_url,
        "QLIK_API_URL": sim.api_url,
        "QLIK_CERT_DIR": str(sim.certificates.directory),
        "APP_SECRET": SECRET,
    }


async def test_jwt_example_end_to_end_with_groups_as_qlik_attributes(
    sim: QlikSimulator, asgi_server: str
) -> None:
    async with running(["examples/jwt_resolver/app.py"], env(sim), server=asgi_server) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await client.post("/login", data={"username": "alice", "password": "demo"})
            assert (await client.get("/jwt/qps/user")).json()["userId"] == "alice"
            session = sim.live_sessions("ACME\\alice")[0]
            assert session.attributes == [("Group", "Sales"), ("Group", "EMEA")]
            await client.post("/logout")
        sim.clear_log()
        result = await visit(url, prefix="jwt")
    assert_visit(result, sim, prefix="jwt")
    # Sessions came from the API (one POST per login), not from a header on the proxy port.
    assert [r.method for r in sim.requests if r.port == "api" and r.path.endswith("/session")] == [
        "POST"
    ]


def token(secret: str = SECRET, *, algorithm: str = "HS256", **claims: object) -> str:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "alice",
        "groups": ["Sales"],
        "iss": "jwt-example",
        "aud": "jwt-example",
        "iat": now,
        "exp": now + 600,
    }
    base.update(claims)
    return jwt.encode(base, secret if algorithm != "none" else None, algorithm=algorithm)  # type: ignore[arg-type]


BAD_TOKENS = {
    "foreign-key": (token("another-secret-of-32-bytes-or-more!"), 401),
    "alg-none": (token(algorithm="none"), 401),
    "expired": (token(exp=int(time.time()) - 60, iat=int(time.time()) - 700), 401),
    "wrong-audience": (token(aud="someone-else"), 401),
    "groups-not-strings": (token(groups=[1, 2]), 401),
    "garbage": ("not.a.jwt", 401),
    "unnameable-user": (token(sub="ACME\\root"), 403),
}


async def test_bad_tokens_never_make_a_qlik_session(sim: QlikSimulator) -> None:
    statuses: dict[str, int] = {}
    async with running(["examples/jwt_resolver/app.py"], env(sim)) as url:
        for case, (cookie, _) in BAD_TOKENS.items():
            async with httpx.AsyncClient(
                base_url=url, cookies={"app_token": cookie}, headers={"accept": "application/json"}
            ) as client:
                statuses[case] = (await client.get("/jwt/qps/user")).status_code
    assert statuses == {case: status for case, (_, status) in BAD_TOKENS.items()}
    assert sim.requests == []
