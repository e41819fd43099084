"""Certificates as Qlik generates them (host name in the CN only, no subjectAltName, RSA 2048):
every client of the middleware verifies them, or the middleware picks one that can.

Evidence for the variant: docs/certificates.md. rustls (the reqwest engine) never reads the CN;
Python's `ssl` (aiohttp, the httpx login client, `websockets`, the QPS client) falls back to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect

from qlik_sso_middleware import QlikSSO, QlikSSOMiddleware, QlikTarget
from qlik_sso_middleware.auth._qps import QPSSettings
from qlik_sso_middleware.auth.ticket import TicketAuth
from qlik_sso_middleware.errors import ConfigurationError, QlikUnavailable
from qlik_sso_middleware.proxy.aiohttp_transport import AiohttpEngine, AiohttpTransport
from qlik_sso_middleware.proxy.engine_choice import ChosenEngine
from qlik_sso_middleware.target import Timeouts, reqwest_installed
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy
from qlik_sso_middleware.testing.certificates import (
    generate_certificates,
    generate_qlik_certificates,
)

from ..apps import build_app, cookie_resolver
from ..servers import serve

ENGINE = f"/sso/app/{DEMO_APPS[0].id}"


@contextlib.asynccontextmanager
async def qlik_site(
    directory: Path, *, proxies: tuple[VirtualProxy, ...] | None = None
) -> AsyncIterator[QlikSimulator]:
    """An https simulator whose proxy and QPS ports present Qlik-generated-style certificates."""
    generate_qlik_certificates(directory)
    async with QlikSimulator(
        proxies or (VirtualProxy(prefix="sso", header_name="hdr-usr"),),
        https=True,
        cert_dir=directory,
    ) as sim:
        yield sim


def by_name(sim: QlikSimulator) -> str:
    """The proxy URL by the one name the certificate holds (an IP cannot match a CN)."""
    return f"https://localhost:{sim.proxy_port}"


async def user_and_first_frame(url: str) -> tuple[dict[str, Any], str]:
    """`qps/user` through the middleware, then the engine WebSocket's first frame."""
    async with httpx.AsyncClient(cookies={"app_user": "alice"}, timeout=30) as browser:
        user = await browser.get(url + "/sso/qps/user", headers={"accept": "application/json"})
    assert user.status_code == 200, user.text
    async with connect(
        "ws" + url[4:] + ENGINE,
        origin=url,  # type: ignore[arg-type]
        additional_headers={"cookie": "app_user=alice"},
        open_timeout=10,
    ) as ws:
        first = await ws.recv()
    return user.json(), str(first)


def test_the_generated_set_looks_like_qlik_s(tmp_path: Path) -> None:
    files = generate_qlik_certificates(tmp_path, hostname="qlikserver")
    server = x509.load_pem_x509_certificate(files.server.read_bytes())
    root = x509.load_pem_x509_certificate(files.root.read_bytes())
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "qlikserver"
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "qlikserver-CA"
    with pytest.raises(x509.ExtensionNotFound):
        server.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    key = server.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert server.version is x509.Version.v3
    assert server.signature_hash_algorithm is not None
    assert server.signature_hash_algorithm.name == "sha256"
    assert server.issuer == root.subject


@pytest.mark.fast
async def test_rustls_refuses_it_python_ssl_accepts_it(tmp_path: Path) -> None:
    from qlik_sso_middleware.proxy.reqwest_engine import ReqwestEngine

    async with qlik_site(tmp_path) as sim:
        url = by_name(sim) + "/sso/qps/user"
        root = str(tmp_path / "root.pem")
        reqwest = ReqwestEngine(timeouts=Timeouts(), verify=root, max_connections=2)
        transport = AiohttpTransport(
            ssl_context=ssl.create_default_context(cafile=root), max_connections=2
        )
        aiohttp = AiohttpEngine(transport, Timeouts())
        try:
            with pytest.raises(QlikUnavailable) as refused:
                await reqwest.stream("GET", url, [], None)
            assert "not valid for any names" in str(refused.value.__cause__)
            response = await aiohttp.stream("GET", url, [], None)
            await response.read()
            await response.aclose()
            assert response.status_code == 200
        finally:
            await reqwest.aclose()
            await transport.aclose()


@pytest.mark.parametrize("engine", ["auto", "aiohttp"])
async def test_http_and_websocket_through_the_middleware(
    tmp_path: Path, engine: str, ws_client_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Both HTTP engines and both upstream WebSocket clients verify Qlik's CN-only certificate."""
    caplog.set_level(logging.WARNING, "qlik_sso_middleware")
    async with qlik_site(tmp_path) as sim:
        app, sso = build_app(
            sim,
            url=by_name(sim),
            target={"verify": str(tmp_path / "root.pem"), "http_engine": engine},
        )
        async with serve(app) as url:
            user, first = await user_and_first_frame(url)
        upstream = sso.upstreams[0]
        if engine == "auto" and reqwest_installed():
            assert isinstance(upstream.engine, ChosenEngine)
            assert upstream.engine.name == "aiohttp"
            assert any("subjectAltName" in r.getMessage() for r in caplog.records)
        else:
            assert isinstance(upstream.engine, AiohttpEngine)
    assert user["userId"] == "alice"
    assert '"userId":"alice"' in first.replace(" ", "")
    assert sim.logins("ACME\\alice") == sim.logins() == 1


@pytest.mark.fast
async def test_auto_keeps_reqwest_for_a_certificate_with_names(
    simulator: QlikSimulator, tmp_path: Path
) -> None:
    """Positive control: the same probe leaves a certificate with a subjectAltName to rustls."""
    generate_certificates(tmp_path)
    async with QlikSimulator(
        [VirtualProxy(prefix="sso", header_name="hdr-usr")], https=True, cert_dir=tmp_path
    ) as sim:
        app, sso = build_app(sim, target={"verify": str(tmp_path / "root.pem")})
        async with serve(app) as url:
            user, _ = await user_and_first_frame(url)
        engine = sso.upstreams[0].engine
    assert isinstance(engine, ChosenEngine)
    assert engine.name == "reqwest"
    assert user["userId"] == "alice"


@pytest.mark.fast
async def test_reqwest_asked_for_fails_at_start_up_naming_cause_and_fix(tmp_path: Path) -> None:
    async with qlik_site(tmp_path) as sim:
        app, _ = build_app(
            sim,
            url=by_name(sim),
            target={"verify": str(tmp_path / "root.pem"), "http_engine": "reqwest"},
        )
        sent: list[dict[str, Any]] = []
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})

        async def receive() -> dict[str, Any]:
            return await inbox.get()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"].startswith("lifespan.startup."):
                await inbox.put({"type": "lifespan.shutdown"})

        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    failed = [m for m in sent if m["type"] == "lifespan.startup.failed"]
    assert failed, sent
    assert "no subjectAltName" in failed[0]["message"]
    assert "http_engine='aiohttp'" in failed[0]["message"]


@pytest.mark.fast
async def test_reqwest_asked_for_without_a_lifespan_refuses_the_request(tmp_path: Path) -> None:
    """Servers without a lifespan (WSGI bridges): the first request decides and says why."""
    async with qlik_site(tmp_path) as sim:
        target = QlikTarget(
            by_name(sim), prefix="sso", verify=str(tmp_path / "root.pem"), http_engine="reqwest"
        )
        sso = QlikSSO(target, resolver=cookie_resolver)
        engine = sso.upstreams[0].engine
        assert isinstance(engine, ChosenEngine)
        with pytest.raises(ConfigurationError, match="subjectAltName"):
            await engine.choose()
        await sso.aclose()


async def test_ticket_logins_over_qlik_certificates_on_the_qps_port(tmp_path: Path) -> None:
    """The QPS client (mutual TLS on 4243) verifies the same CN-only server certificate."""
    proxies = (VirtualProxy(prefix="sso", auth="ticket"),)
    async with qlik_site(tmp_path, proxies=proxies) as sim:
        qps = QPSSettings(
            api_url=f"https://localhost:{sim.api_port}",
            prefix="sso",
            root=tmp_path / "root.pem",
            client_cert=tmp_path / "client.pem",
            client_key=tmp_path / "client_key.pem",
        )
        target = QlikTarget(
            by_name(sim), prefix="sso", verify=str(tmp_path / "root.pem"), auth=TicketAuth(qps)
        )
        app = QlikSSOMiddleware(
            build_app(sim)[0].app, sso=QlikSSO(target, resolver=cookie_resolver)
        )
        async with serve(app) as url:
            user, first = await user_and_first_frame(url)
    assert user["userId"] == "alice"
    assert '"userId":"alice"' in first.replace(" ", "")
    assert sim.logins("ACME\\alice") == sim.logins() == 1
