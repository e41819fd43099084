"""A faithful Qlik Sense simulator: proxy port, mutual-TLS QPS API and engine WebSocket on loopback.

Think `moto` for Qlik: tests (ours and our users') start one with
`async with QlikSimulator() as sim:` (or `with SimulatorThread() as sim:` from sync code) and point
their Qlik integration at `sim.proxy_url` / `sim.api_url` with `sim.certificates`. It follows
`qlik-behaviour.md`: virtual proxies, the authentication order, cookies, sliding timeouts, the
5-session cap, extended WebSocket CSRF protection, tickets and sessions via the QPS API, and a
JSON-RPC engine over small demo apps that enigma.js can drive. Everything it receives is recorded
(`sim.requests`, `sim.frames`); `sim.faults` injects latency, errors and closes; time is injectable
(`ManualClock`). With `tag_user=True` every answer and engine frame names the user it served
(`USER_TAG_HEADER`, `USER_TAG_FIELD`), so a client can check end to end that it got its own.

Hazard: this is test infrastructure. It binds loopback by default and its certificates are test
credentials; never expose it.
"""

from __future__ import annotations

from .access import AccessPasses
from .certificates import CertificateFiles, generate_certificates, generate_qlik_certificates
from .clock import ManualClock
from .demo_apps import DEMO_APPS, DemoApp, DemoObject
from .faults import Faults
from .records import RecordedFrame, RecordedRequest, SimSession
from .server import QlikSimulator
from .thread import SimulatorThread
from .user_tag import USER_TAG_FIELD, USER_TAG_HEADER
from .virtual_proxy import VirtualProxy

__all__ = [
    "DEMO_APPS",
    "USER_TAG_FIELD",
    "USER_TAG_HEADER",
    "AccessPasses",
    "CertificateFiles",
    "DemoApp",
    "DemoObject",
    "Faults",
    "ManualClock",
    "QlikSimulator",
    "RecordedFrame",
    "RecordedRequest",
    "SimSession",
    "SimulatorThread",
    "VirtualProxy",
    "generate_certificates",
    "generate_qlik_certificates",
]
