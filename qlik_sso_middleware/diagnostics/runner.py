"""`run_checks(config)`: test the Qlik side of a configuration step by step, like a support engineer.

Order: proxy port (DNS, TCP, TLS, certificate dates; http/https mixed up) → QPS API port (DNS,
TCP, TLS, client certificate, xrfkey, and that it is the API and not another port of Qlik's) → the
virtual proxy (exists, from evidence) → a real login of `[check].test_user` with the configured
strategy (cookie name, `-HTTP`, `qps/user`) → `qps/csrftoken` → the engine: a WebSocket with the
app's Origin and a real request answered → the cookie's SameSite/Secure for the embedding mode. A
step that cannot run because an earlier one failed is skipped. Every session the check creates is
ended.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from ..auth.base import AuthStrategy
from ..auth.header import HeaderAuth
from ..config import QlikSSOConfig, build_auth, build_qps_settings, build_target
from ..errors import CertificateError, ConfigurationError, QlikError, XrfkeyRejected
from ..upstream import Upstream
from .cloud import check_cloud
from .front_proxy import check_front_proxy
from .http_engine import http_engine_step
from .network import (
    certificate_names,
    certificate_summary,
    fetch_certificate,
    file_certificates,
    resolve,
    speaks_http,
    tcp_connect,
    tls_handshake,
)
from .qlik import QlikProbe
from .report import Report, Step

__all__ = ["run_checks"]


async def run_checks(
    config: QlikSSOConfig,
    *,
    on_step: Callable[[Step], None] | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> Report:
    """Run every applicable check; `report.ok` is True only when none failed."""
    report = Report(on_step=on_step)
    await check_cloud(config, report)  # [cloud]: its own steps (diagnostics/cloud.py)
    if config.qlik.url is None:
        return report
    clock = now or (lambda: dt.datetime.now(dt.UTC))
    try:
        auth: AuthStrategy = build_auth(config)
        can_login = True
    except CertificateError:
        # Reported as `qps.credentials` below; the network steps still run.
        auth, can_login = HeaderAuth(), False
    target = build_target(config, auth=auth)
    upstream = Upstream(target)
    try:
        proxy_ok = await _network(report, "proxy", "Qlik proxy", target.url, config, clock)
        if proxy_ok and target.is_https:
            proxy_ok = await _proxy_tls(report, upstream, config, clock)
            if proxy_ok:
                await http_engine_step(report, upstream)
        qps_ok = await _qps(report, config, clock)
        if not proxy_ok:
            report.skipped("qlik", "virtual proxy, login, WebSocket", "the proxy is not reachable")
            return report
        probe = QlikProbe(config, upstream, report)
        try:
            await probe.run(qps_ok=qps_ok, can_login=can_login)
        finally:
            await probe.cleanup()
    finally:
        await upstream.aclose()
    await check_front_proxy(config, report)
    return report


async def _network(
    report: Report,
    id: str,
    what: str,
    url: str,
    config: QlikSSOConfig,
    clock: Callable[[], dt.datetime],
) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or ""
    default_port = 4243 if id == "qps" else (443 if parts.scheme == "https" else 80)
    port = parts.port or default_port
    key = "qlik.url" if id == "proxy" else "qps.api_url"
    try:
        addresses = await resolve(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        report.failed(
            f"{id}.dns",
            f"{what}: DNS",
            f"cannot resolve {host!r} ({exc})",
            f"check the host name in {key} and this machine's DNS / hosts file",
        )
        return False
    report.passed(f"{id}.dns", f"{what}: DNS", f"{host} -> {', '.join(addresses)}")
    try:
        await tcp_connect(host, port, config.qlik.connect_timeout)
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        report.failed(
            f"{id}.tcp",
            f"{what}: TCP {host}:{port}",
            f"cannot connect ({reason})",
            f"check the port in {key} (Qlik: 443 proxy, 4243 QPS API), that the service runs, "
            "and that firewalls let this machine reach it",
        )
        return False
    report.passed(f"{id}.tcp", f"{what}: TCP {host}:{port}", "connected")
    return True


async def _proxy_tls(
    report: Report, upstream: Upstream, config: QlikSSOConfig, clock: Callable[[], dt.datetime]
) -> bool:
    host, port = upstream.host, upstream.port
    assert upstream.ssl_context is not None
    outcome = await tls_handshake(
        host, port, upstream.ssl_context, host, config.qlik.connect_timeout
    )
    cert = await fetch_certificate(host, port, host, config.qlik.connect_timeout)
    shown, expired = certificate_summary(cert, clock()) if cert else ("no certificate seen", False)
    title = "Qlik proxy: TLS certificate"
    if outcome.ok:
        report.passed("proxy.tls", title, shown)
        return True
    fixes = {
        "untrusted": "the proxy's certificate is not signed by a CA this machine trusts: set "
        "qlik.verify to the CA bundle (or the Qlik site's root.pem) that signed it",
        "hostname": f"the certificate does not name {host!r}: use a host name it names in "
        "qlik.url (see the names above), or reissue the certificate",
        "expired": "the proxy's certificate expired: renew it (QMC > Proxies > Security)",
        "protocol": "the TLS handshake failed: is qlik.url's port an https port?",
    }
    outcome_kind = "expired" if expired and outcome.kind != "hostname" else outcome.kind
    if outcome_kind == "protocol" and await speaks_http(host, port, config.qlik.connect_timeout):
        fixed = upstream.target.url.replace("https://", "http://", 1)
        report.failed(
            "proxy.tls",
            title,
            f"{outcome.error}: {host}:{port} answers plain http",
            f"set qlik.url = '{fixed}' (or enable https on that port)",
            {"config": {"qlik.url": fixed}},
        )
        return False
    action = None
    if outcome_kind == "untrusted":
        action = {"config": {"qlik.verify": "<root.pem exported from this Qlik site>"}}
    report.failed("proxy.tls", title, f"{outcome.error}; {shown}", fixes[outcome_kind], action)
    return False


async def _qps(report: Report, config: QlikSSOConfig, clock: Callable[[], dt.datetime]) -> bool:
    if config.qps.api_url is None:
        report.skipped("qps", "QPS API", "not configured ([qps].api_url)")
        return False
    if not await _network(report, "qps", "QPS API", config.qps.api_url, config, clock):
        return False
    _certificate_files(report, config, clock)
    names = await _qps_server_certificate(report, config, clock)
    from ..auth._qps import QPSClient

    title = "QPS API: TLS both ways + xrfkey"
    try:
        settings = build_qps_settings(config)
        client = QPSClient(settings, now=clock)
    except ConfigurationError as exc:
        detail = (
            f"qps.{exc.message}" if exc.field and not exc.field.startswith("qps") else exc.message
        )
        report.failed(
            "qps.credentials",
            "QPS API: certificate files",
            detail,
            _cert_fix(detail),
            _cert_action(detail),
        )
        return False
    try:
        await client.probe()
    except XrfkeyRejected as exc:
        report.failed(
            "qps.xrfkey",
            title,
            exc.message,
            "something between this machine and QPS drops or rewrites the X-Qlik-Xrfkey header "
            "or the xrfkey query parameter (QPS needs both, the same 16 characters): point "
            "qps.api_url at QPS itself (port 4243), or make the gateway pass both unchanged",
            {"front_end": {"forward": "X-Qlik-Xrfkey header and xrfkey query parameter"}},
        )
        return False
    except QlikError as exc:
        fix, action = _qps_fix(exc.message, config, names)
        report.failed("qps.tls", title, exc.message, fix, action)
        return False
    finally:
        await client.aclose()
    report.passed(
        "qps.tls", title, "server certificate verified, client certificate accepted, xrfkey ok"
    )
    return True


async def _qps_server_certificate(
    report: Report, config: QlikSSOConfig, clock: Callable[[], dt.datetime]
) -> list[str]:
    """QPS's own certificate (names, dates); whether it is trusted is the next step's job.
    Returns the DNS names it holds (for a `qps.server_name` fix)."""
    assert config.qps.api_url is not None
    parts = urlsplit(config.qps.api_url)
    host = parts.hostname or ""
    name = config.qps.server_name or host
    cert = await fetch_certificate(host, parts.port or 4243, name, config.qlik.connect_timeout)
    if cert is None:
        return []  # no TLS at all: the probe below says so in Qlik's terms
    shown, bad = certificate_summary(cert, clock())
    if bad:
        report.failed(
            "qps.server.dates",
            "certificate of the QPS API",
            shown,
            "renew the Qlik site's certificates (the Qlik Service Dispatcher recreates expired "
            "ones on restart), then export root.pem / client.pem again",
        )
    else:
        report.passed("qps.server.dates", "certificate of the QPS API", shown)
    return certificate_names(cert)


def _certificate_files(
    report: Report, config: QlikSSOConfig, clock: Callable[[], dt.datetime]
) -> None:
    files = [("root", config.qps.root), ("client_cert", config.qps.client_cert)]
    for key, path in files:
        if path is None:
            continue
        for cert in file_certificates(path)[:1]:
            shown, bad = certificate_summary(cert, clock())
            title = f"certificate qps.{key}"
            if bad:
                report.failed(
                    f"qps.{key}.dates",
                    title,
                    shown,
                    "export fresh certificates from the QMC (Certificates > Export)",
                )
            else:
                report.passed(f"qps.{key}.dates", title, shown)


def _cert_fix(message: str) -> str:
    if "password" in message:
        return "set qps.client_key_password / qps.pfx_password to the export password"
    return (
        "export the certificates again from the QMC (Certificates > Export, format 'Platform "
        "independent PEM-format') and point qps.root, qps.client_cert and qps.client_key at them"
    )


def _cert_action(message: str) -> dict[str, object]:
    if "password" in message:
        return {"config": {"qps.client_key_password": "<the export password>"}}
    return {
        "config": {
            "qps.root": "<root.pem exported from this Qlik site>",
            "qps.client_cert": "<client.pem exported from this Qlik site>",
            "qps.client_key": "<client_key.pem exported from this Qlik site>",
        }
    }


def _qps_fix(
    message: str, config: QlikSSOConfig, names: list[str]
) -> tuple[str, dict[str, object] | None]:
    lowered = message.lower()
    parts = urlsplit(config.qps.api_url or "")
    api_url = f"https://{parts.netloc.rsplit(':', 1)[0] if parts.port else parts.netloc}:4243"
    if "not the qps api" in lowered:
        return (
            f"qps.api_url must be QPS's API port (4243 unless the QMC's proxy settings say "
            f"otherwise), not the proxy (443) or Windows authentication (4244) port: set "
            f"qps.api_url = '{api_url}'",
            {"config": {"qps.api_url": api_url}},
        )
    if "server_name" in lowered or "does not name" in lowered:
        if names:
            return (
                f"QPS's certificate names {', '.join(names)}: set qps.server_name = '{names[0]}'",
                {"config": {"qps.server_name": names[0]}},
            )
        return "set qps.server_name to the host name in QPS's certificate", None
    if "not signed by the configured root" in lowered:
        return (
            "qps.root must be root.pem exported from THIS Qlik site (QMC > Certificates)",
            {"config": {"qps.root": "<root.pem exported from this Qlik site>"}},
        )
    if "client certificate" in lowered:
        return (
            "QPS refused client.pem: export client.pem/client_key.pem from this site's QMC; a "
            "certificate from another Qlik site or a re-installed server is refused",
            _cert_action(message),
        )
    return "check qps.api_url (https://<qlik host>:4243) and that QPS listens on the API port", None
