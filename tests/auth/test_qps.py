"""The QPS API client against a real mutual-TLS server on loopback: xrfkey, certificates, errors."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from qlik_sso_middleware.auth._qps import QPSClient, QPSSettings, new_xrfkey
from qlik_sso_middleware.errors import (
    ClientCertificateRejected,
    ConfigurationError,
    QlikTimeout,
    QlikUnavailable,
    QPSError,
    XrfkeyRejected,
)
from qlik_sso_middleware.identity import QlikIdentity
from qlik_sso_middleware.testing.certificates import CertificateFiles, generate_certificates

from .tls_app_server import free_port, serve_tls

ALICE = QlikIdentity("ACME", "alice", {"Group": ["Sales", "EMEA"]})
SESSION_ID = "0123456789abcdef0123456789abcdef"


@dataclass
class FakeQPS:
    """What the fake answers, and what it saw. `answer` maps "METHOD path" to a response."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    answer: dict[str, Response] = field(default_factory=dict)
    hang: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        query = request.query_params.items()
        query_key = next((v for k, v in query if k.lower() == "xrfkey"), None)
        self.seen.append(
            {
                "method": request.method,
                "path": request.url.path,
                "raw_path": request.scope["raw_path"].decode("ascii"),
                "query_xrfkey": query_key,
                "header_xrfkey": request.headers.get("x-qlik-xrfkey"),
                "json": json.loads(body) if body else None,
            }
        )
        if query_key is None or query_key != request.headers.get("x-qlik-xrfkey"):
            return PlainTextResponse("XSRF prevention check failed. Possible XSRF discovered.", 403)
        key = f"{request.method} {request.url.path}"
        if key == "GET /qps/slow/ticket":
            await self.hang.wait()
        if key in self.answer:
            return self.answer[key]
        return JSONResponse({"Ticket": "T-abc", "TargetUri": None}, status_code=201)

    def app(self) -> Starlette:
        methods = ["GET", "POST", "DELETE"]
        return Starlette(routes=[Route("/qps/{rest:path}", self.handle, methods=methods)])


@pytest.fixture
def certs(tmp_path: Path) -> CertificateFiles:
    return generate_certificates(tmp_path / "site", pfx_password="pfx-secret-pw")


@pytest.fixture
async def fake(certs: CertificateFiles) -> AsyncIterator[tuple[FakeQPS, int]]:
    qps = FakeQPS()
    async with serve_tls(qps.app(), certs) as port:
        yield qps, port
        qps.hang.set()


def pem_settings(certs: CertificateFiles, port: int, **kw: Any) -> QPSSettings:
    options: dict[str, Any] = {
        "api_url": f"https://localhost:{port}",
        "root": certs.root,
        "client_cert": certs.client,
        "client_key": certs.client_key,
        "prefix": "tkt",
    }
    options.update(kw)
    return QPSSettings(**options)


def test_xrfkey_shape() -> None:
    keys = {new_xrfkey() for _ in range(50)}
    assert len(keys) == 50
    assert all(re.fullmatch(r"[0-9a-zA-Z]{16}", k) for k in keys)


async def test_ticket_with_pem_sends_identity_attributes_and_fresh_xrfkeys(
    certs: CertificateFiles, fake: tuple[FakeQPS, int]
) -> None:
    qps, port = fake
    async with QPSClient(pem_settings(certs, port)) as client:
        assert client.base_url == f"https://localhost:{port}/qps/tkt/"
        first = await client.create_ticket(ALICE)
        await client.create_ticket(ALICE, target_id="t-1")
    assert first.ticket == "T-abc"
    assert "T-abc" not in repr(first)
    assert [s["path"] for s in qps.seen] == ["/qps/tkt/ticket", "/qps/tkt/ticket"]
    assert qps.seen[0]["json"] == {
        "UserDirectory": "ACME",
        "UserId": "alice",
        "Attributes": [{"Group": "Sales"}, {"Group": "EMEA"}],
    }
    assert qps.seen[1]["json"]["TargetId"] == "t-1"
    keys = [s["query_xrfkey"] for s in qps.seen]
    assert keys == [s["header_xrfkey"] for s in qps.seen]
    assert keys[0] != keys[1]


async def test_pfx_with_password_works(certs: CertificateFiles, fake: tuple[FakeQPS, int]) -> None:
    qps, port = fake
    settings = QPSSettings(
        api_url=f"https://127.0.0.1:{port}",
        root=certs.root,
        pfx=certs.client_pfx,
        pfx_password="pfx-secret-pw",
    )
    async with QPSClient(settings) as client:
        ticket = await client.create_ticket(ALICE)
    assert ticket.ticket == "T-abc"
    assert qps.seen[0]["path"] == "/qps/ticket"


async def test_session_and_user_calls_quote_path_segments(
    certs: CertificateFiles, fake: tuple[FakeQPS, int]
) -> None:
    qps, port = fake
    odd = QlikIdentity("ACME/EU", "zoë smith")
    user_path = "/qps/tkt/user/ACME/EU/zoë smith"
    qps.answer = {
        "POST /qps/tkt/session": JSONResponse({"SessionId": SESSION_ID, "UserId": "alice"}, 201),
        f"GET /qps/tkt/session/{SESSION_ID}": JSONResponse({"SessionId": SESSION_ID}),
        "DELETE /qps/tkt/session/gone": PlainTextResponse("not found", 404),
        f"GET {user_path}": JSONResponse([{"SessionId": "a"}, {"SessionId": "b"}]),
        f"DELETE {user_path}": JSONResponse([{"SessionId": "a"}]),
    }
    async with QPSClient(pem_settings(certs, port)) as client:
        created = await client.create_session(ALICE, SESSION_ID)
        assert created["SessionId"] == SESSION_ID
        assert await client.get_session(SESSION_ID) == {"SessionId": SESSION_ID}
        assert await client.delete_session("gone") is None
        assert len(await client.get_user_sessions(odd)) == 2
        assert await client.delete_user_sessions(odd) == [{"SessionId": "a"}]
    assert qps.seen[0]["json"]["SessionId"] == SESSION_ID
    # '/' inside the directory is one encoded segment, not two.
    assert qps.seen[3]["raw_path"] == "/qps/tkt/user/ACME%2FEU/zo%C3%AB%20smith"


async def test_xrfkey_rejection_maps_to_xrfkey_rejected(
    certs: CertificateFiles, fake: tuple[FakeQPS, int]
) -> None:
    qps, port = fake
    qps.answer = {
        "POST /qps/tkt/ticket": PlainTextResponse(
            "XSRF prevention check failed. Possible XSRF discovered.", 403
        )
    }
    async with QPSClient(pem_settings(certs, port)) as client:
        with pytest.raises(XrfkeyRejected, match="xrfkey") as info:
            await client.create_ticket(ALICE)
    assert info.value.status == 403


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (PlainTextResponse("UserId: whitespace is not allowed", 400), "field UserId"),
        (PlainTextResponse("Bad request", 400), "request body"),
        (PlainTextResponse("<html>oops</html>", 201), "not with JSON"),
        (JSONResponse(["not", "an", "object"], 201), "without a Ticket"),
        (JSONResponse({"Ticket": 5}, 201), "without a Ticket"),
        (PlainTextResponse("boom", 500), "with 500"),
    ],
)
async def test_bad_answers_map_to_qps_error(
    certs: CertificateFiles, fake: tuple[FakeQPS, int], response: Response, match: str
) -> None:
    qps, port = fake
    qps.answer = {"POST /qps/tkt/ticket": response}
    async with QPSClient(pem_settings(certs, port)) as client:
        with pytest.raises(QPSError, match=match) as info:
            await client.create_ticket(ALICE)
    assert not isinstance(info.value, XrfkeyRejected)


async def test_session_id_must_come_back_unchanged(
    certs: CertificateFiles, fake: tuple[FakeQPS, int]
) -> None:
    qps, port = fake
    qps.answer = {"POST /qps/tkt/session": JSONResponse({"SessionId": "someone-else"}, 201)}
    async with QPSClient(pem_settings(certs, port)) as client:
        with pytest.raises(QPSError, match="different SessionId") as info:
            await client.create_session(ALICE, SESSION_ID)
    assert "someone-else" not in str(info.value)


async def test_user_sessions_wrong_shape(
    certs: CertificateFiles, fake: tuple[FakeQPS, int]
) -> None:
    qps, port = fake
    qps.answer = {"GET /qps/tkt/user/ACME/alice": JSONResponse({"SessionId": "x"})}
    async with QPSClient(pem_settings(certs, port)) as client:
        with pytest.raises(QPSError, match="unexpected JSON shape"):
            await client.get_user_sessions(ALICE)


async def test_client_certificate_from_another_site_is_rejected(
    tmp_path: Path, certs: CertificateFiles
) -> None:
    # The server trusts only `certs.root` for clients; our client certificate comes from another
    # site whose root we still trust for the *server* certificate.
    other = generate_certificates(tmp_path / "other")
    qps = FakeQPS()
    async with serve_tls(qps.app(), other, client_ca=certs) as port:
        settings = QPSSettings(
            api_url=f"https://localhost:{port}",
            root=other.root,
            client_cert=other.client,
            client_key=other.client_key,
        )
        async with QPSClient(settings) as client:
            with pytest.raises(ClientCertificateRejected) as info:
                await client.create_ticket(ALICE)
    assert "client certificate not accepted by QPS" in str(info.value)
    assert qps.seen == []


async def test_connection_refused_names_host_and_port(certs: CertificateFiles) -> None:
    port = free_port()
    async with QPSClient(pem_settings(certs, port)) as client:
        with pytest.raises(QlikUnavailable, match=f"QPS unreachable at localhost:{port}"):
            await client.create_ticket(ALICE)


async def test_timeout(certs: CertificateFiles, fake: tuple[FakeQPS, int]) -> None:
    qps, port = fake
    async with QPSClient(pem_settings(certs, port, prefix="slow", timeout=0.2)) as client:
        # A GET on the ticket path hangs in the fake until the test ends.
        with pytest.raises(QlikTimeout, match="did not answer"):
            await client._call("GET", "ticket", "GET ticket")
    assert qps.seen[0]["path"] == "/qps/slow/ticket"


async def test_server_name_for_certificates_naming_the_short_host(tmp_path: Path) -> None:
    certs = generate_certificates(tmp_path, server_names=("qlikserver",))
    qps = FakeQPS()
    async with serve_tls(qps.app(), certs) as port:
        async with QPSClient(pem_settings(certs, port)) as client:
            with pytest.raises(QlikUnavailable, match="server_name"):
                await client.create_ticket(ALICE)
        async with QPSClient(pem_settings(certs, port, server_name="qlikserver")) as client:
            assert (await client.create_ticket(ALICE)).ticket == "T-abc"


async def test_server_certificate_from_another_root(tmp_path: Path) -> None:
    certs = generate_certificates(tmp_path, server_signed_by_other_root=True)
    qps = FakeQPS()
    async with (
        serve_tls(qps.app(), certs) as port,
        QPSClient(pem_settings(certs, port)) as client,
    ):
        with pytest.raises(QlikUnavailable, match="not signed by the configured root"):
            await client.create_ticket(ALICE)
    assert qps.seen == []


async def test_verify_off_works_on_loopback_and_is_loud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    certs = generate_certificates(tmp_path, server_signed_by_other_root=True)
    qps = FakeQPS()
    caplog.set_level(logging.WARNING, logger="qlik_sso_middleware")
    async with (
        serve_tls(qps.app(), certs) as port,
        QPSClient(pem_settings(certs, port, root=None, verify=False)) as client,
    ):
        assert (await client.create_ticket(ALICE)).ticket == "T-abc"
    assert "TLS verification of the QPS API" in caplog.text
    assert "OFF" in caplog.text


def test_verify_off_refused_for_remote_host(certs: CertificateFiles) -> None:
    with pytest.raises(ConfigurationError, match="verify") as info:
        QPSSettings(api_url="https://qlik.example.com", root=certs.root, verify=False)
    assert info.value.field == "verify"
    forced = QPSSettings(
        api_url="https://qlik.example.com", root=None, verify=False, force_insecure=True
    )
    assert forced.base_url == "https://qlik.example.com:4243/qps/"


@pytest.mark.parametrize(
    ("options", "field_name"),
    [
        ({"api_url": "http://qlik:4243"}, "api_url"),
        ({"api_url": "https://qlik:4243/qps/tkt/"}, "api_url"),
        ({"api_url": "not a url at all"}, "api_url"),
        ({"prefix": "t kt"}, "prefix"),
        ({"prefix": "a/b"}, "prefix"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"server_name": "https://qlik"}, "server_name"),
        ({"root": None}, "root"),
    ],
)
def test_settings_validation_names_the_field(
    certs: CertificateFiles, options: dict[str, Any], field_name: str
) -> None:
    base: dict[str, Any] = {"api_url": "https://qlik:4243", "root": certs.root}
    base.update(options)
    with pytest.raises(ConfigurationError) as info:
        QPSSettings(**base)
    assert info.value.field == field_name


def test_settings_repr_hides_passwords(certs: CertificateFiles) -> None:
    settings = QPSSettings(
        api_url="https://[::1]", root=certs.root, pfx=certs.client_pfx, pfx_password="hunter2"
    )
    assert "hunter2" not in repr(settings)
    assert settings.base_url == "https://[::1]:4243/qps/"


async def test_no_secret_in_errors_or_logs(
    certs: CertificateFiles, fake: tuple[FakeQPS, int], caplog: pytest.LogCaptureFixture
) -> None:
    qps, port = fake
    caplog.set_level(logging.DEBUG)
    qps.answer = {
        f"GET /qps/tkt/session/{SESSION_ID}": PlainTextResponse(f"bad {SESSION_ID}", 400),
        f"DELETE /qps/tkt/session/{SESSION_ID}": PlainTextResponse("nope", 500),
    }
    errors: list[str] = []
    async with QPSClient(pem_settings(certs, port)) as client:
        for call in (client.get_session, client.delete_session):
            with pytest.raises(QPSError) as info:
                await call(SESSION_ID)
            errors.append(str(info.value))
    assert "session/{id}" in errors[0]
    for text in [*errors, caplog.text]:
        assert SESSION_ID not in text


async def test_an_answer_over_four_mebibytes_is_refused(
    certs: CertificateFiles, fake: tuple[FakeQPS, int]
) -> None:
    # QPS answers are small JSON documents: a huge one is a broken or hostile server, never buffered.
    qps, port = fake
    padding = 4 * 1024 * 1024
    qps.answer = {"POST /qps/tkt/ticket": JSONResponse({"Ticket": "T-abc", "Pad": "x" * padding})}
    async with QPSClient(pem_settings(certs, port)) as client:
        with pytest.raises(QPSError, match="ticket with more than 4194304 bytes"):
            await client.create_ticket(ALICE)
        qps.answer = {"POST /qps/tkt/ticket": JSONResponse({"Ticket": "T-abc", "Pad": "x" * 1000})}
        assert (await client.create_ticket(ALICE)).ticket == "T-abc"
