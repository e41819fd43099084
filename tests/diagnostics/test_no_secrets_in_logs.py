"""`run_checks` with DEBUG logging on every logger: no session cookie, ticket, xrfkey, CSRF token,
key or password may reach a log line, whichever strategy the check logs in with (header, session
API, ticket) and whichever way a step fails. The secrets are read back from the simulator's own
record of what it issued and received."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from qlik_sso_middleware.config import load_config
from qlik_sso_middleware.diagnostics import run_checks
from qlik_sso_middleware.testing import (
    AccessPasses,
    QlikSimulator,
    VirtualProxy,
    generate_certificates,
)

PASSWORD = "Pfx-Passw0rd-4-check"
_QUERY_SECRET = re.compile(r"(?i)(?:xrfkey|qlikticket|qlik-csrf-token)=([^&]+)")


def _secrets(sim: QlikSimulator) -> set[str]:
    found = {PASSWORD}
    for request in sim.requests:
        found.update(_QUERY_SECRET.findall(request.query))
        found.update(request.header("x-qlik-xrfkey"))
        found.update(value for name, value in request.cookies.items() if "session" in name.lower())
    for session in sim._state.history:  # every session cookie and CSRF token it ever issued
        found.update({session.id, session.csrf_token})
    return {s for s in found if len(s) >= 8}


@pytest.fixture
def every_logger_at_debug() -> Iterator[None]:
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in ["", *logging.root.manager.loggerDict]}
    root.setLevel(logging.DEBUG)
    for name in logging.root.manager.loggerDict:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield
    for name, level in saved.items():
        logging.getLogger(name or None).setLevel(level)


@pytest.mark.parametrize(
    ("strategy", "vp_options", "access"),
    [
        ("header", {}, AccessPasses()),
        ("header", {"header_name": "X-Other"}, AccessPasses()),  # failing login, every probe
        ("header", {}, AccessPasses(default="none")),  # the engine refuses after its greeting
        ("session_api", {"auth": "ticket"}, AccessPasses()),
        ("ticket", {"auth": "ticket"}, AccessPasses()),
    ],
)
async def test_run_checks_logs_no_secret(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    every_logger_at_debug: None,
    strategy: str,
    vp_options: dict[str, str],
    access: AccessPasses,
) -> None:
    certs = generate_certificates(tmp_path, pfx_password=PASSWORD)
    vps = [VirtualProxy(prefix="sso", **vp_options)]  # type: ignore[arg-type]
    async with QlikSimulator(vps, cert_dir=tmp_path, pfx_password=PASSWORD, access=access) as sim:
        assert sim.api_url is not None
        env = {
            "QLIK_SSO_QLIK_URL": sim.proxy_url,
            "QLIK_SSO_CHECK_TEST_USER": "ACME\\checker",
            "QLIK_SSO_AUTH_STRATEGY": strategy,
            "QLIK_SSO_QPS_API_URL": sim.api_url,
            "QLIK_SSO_QPS_ROOT": str(certs.root),
            "QLIK_SSO_QPS_PFX": str(certs.client_pfx),
            "QLIK_SSO_QPS_PFX_PASSWORD": PASSWORD,
        }
        with caplog.at_level(logging.DEBUG):
            report = await run_checks(load_config(None, env))
        secrets = _secrets(sim)
    logged = caplog.text + "\n".join(str(step) for step in report.steps)
    assert len(caplog.records) > 10  # DEBUG really was on: the libraries talked
    assert any(s.status == "pass" for s in report.steps)
    assert len(secrets) >= 3  # cookies, xrfkeys, tokens really were in play
    leaked = sorted(s for s in secrets if s in logged)
    assert leaked == []
