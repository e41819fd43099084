"""`qlik-sso check`, offload mode: the guarantees that now depend on the front proxy's configuration.

With `[offload] secret` and `[app] origin` (the public address, i.e. the front proxy's) set, the
check sends what an attacker would through the front proxy, with no app login:

- `front.spoofing`: a Qlik request carrying an identity header (in several spellings), `X-Qlik-*`
  headers, `Authorization` and a made-up Qlik session cookie. It must be refused by the app (401,
  or a redirect to the app's login). If Qlik answers it (its `qps/user` JSON), the front proxy
  passes requests to Qlik without asking the app, or passes browser headers it must drop.
- `front.auth_endpoint`: a forged auth sub-request with a wrong secret. It must get no Qlik cookie
  (the front proxy keeps the endpoint internal, the app refuses a wrong secret).

What it cannot see from outside: the headers Qlik received on a request the app admitted (the
security matrix tests that against nginx and Caddy, `tests/security/`).
"""

from __future__ import annotations

import secrets
import uuid

import httpx2 as httpx

from ..config import QlikSSOConfig
from ..offload.front import SECRET_HEADER
from .report import Report

__all__ = ["check_front_proxy"]

_SPOOFED_USER = "QLIKSSOCHECK\\spoofed"


async def check_front_proxy(config: QlikSSOConfig, report: Report) -> None:
    """Add the front proxy steps to `report` (skipped when offload mode is not configured)."""
    if config.offload.secret is None:
        return
    origin = config.app.origin
    if origin is None:
        report.skipped("front", "front proxy", "set [app] origin to the front proxy's address")
        return
    mount = config.qlik.mount_path or (f"/{config.qlik.prefix}/" if config.qlik.prefix else "/")
    header = config.auth.header_name
    spoofed = [
        (header, _SPOOFED_USER),
        (header.upper(), _SPOOFED_USER),
        (header.replace("-", "_"), _SPOOFED_USER),
        ("X-Qlik-User", "UserDirectory=QLIKSSOCHECK; UserId=spoofed"),
        ("Authorization", "Basic " + secrets.token_urlsafe(12)),
        ("Cookie", f"X-Qlik-Session-{config.qlik.prefix}={uuid.uuid4()}"),
        ("Accept", "application/json"),
    ]
    async with httpx.AsyncClient(timeout=10, follow_redirects=False, trust_env=False) as client:
        try:
            answer = await client.get(f"{origin}{mount}qps/user", headers=spoofed)
            forged = await client.get(
                f"{origin}{config.offload.auth_path}",
                headers={
                    "X-Original-URI": f"{mount}qps/user",
                    "X-Original-Method": "GET",
                    SECRET_HEADER.decode(): "not-the-" + secrets.token_urlsafe(24),
                },
            )
        except httpx.HTTPError as exc:
            report.failed(
                "front.reachable",
                "front proxy",
                f"{origin} did not answer ({type(exc).__name__})",
                "start the front proxy, or correct [app] origin",
            )
            return
    _spoofing(report, answer)
    _forged(report, forged)


def _spoofing(report: Report, answer: httpx.Response) -> None:
    title = "front proxy: spoofed identity headers never reach Qlik"
    reached = "userId" in answer.text or '"session"' in answer.text
    if reached:
        report.failed(
            "front.spoofing",
            title,
            f"Qlik answered a request with spoofed identity headers and no app login "
            f"({answer.status_code})",
            "the front proxy must ask the app first (auth_request / forward_auth) and pass only "
            "the allow-listed browser headers: use `qlik-sso front-config`'s configuration",
        )
    elif answer.status_code in (401, 302, 303, 307):
        report.passed("front.spoofing", title, f"refused by the app ({answer.status_code})")
    else:
        report.failed(
            "front.spoofing",
            title,
            f"expected the app's 401 or login redirect, got {answer.status_code}",
            "check that [app] origin is the front proxy and that its Qlik location asks the app",
        )


def _forged(report: Report, forged: httpx.Response) -> None:
    title = "front proxy: the auth endpoint answers no one else"
    leaked = any(k.lower() == "x-qlik-sso-cookie" for k in forged.headers)
    if leaked or forged.is_success:
        report.failed(
            "front.auth_endpoint",
            title,
            f"a forged sub-request was answered {forged.status_code}"
            + (" with a Qlik cookie" if leaked else ""),
            "keep the auth location internal (nginx `internal;`) and clear X-Qlik-SSO-Secret on "
            "everything passed to the app, as the generated configuration does",
        )
    else:
        report.passed("front.auth_endpoint", title, f"refused ({forged.status_code})")
