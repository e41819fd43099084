"""The server matrix: one simulator and, per ASGI server, one process serving the proxy test app.

`asgi_server` is the fixture parameter: every test in this folder runs once per server, with the
servers' own defaults (what a user gets), on loopback ports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from qlik_sso_middleware.testing import SimulatorThread, VirtualProxy

from .app_host import SPEC_ENV
from .servers import SERVERS, serving


@pytest.fixture(scope="module", params=SERVERS)
def asgi_server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def matrix_sim(asgi_server: str) -> Iterator[SimulatorThread]:
    """A fresh simulator per server, so what one server's tests did never counts for another's."""
    with SimulatorThread([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        yield sim


@pytest.fixture(scope="module")
def app_url(asgi_server: str, matrix_sim: SimulatorThread) -> Iterator[str]:
    """The proxy test app (tests/apps.py) behind the middleware, under `asgi_server`."""
    spec = json.dumps({"url": matrix_sim.proxy_url})
    with serving(asgi_server, "tests.matrix.app_host:application", {SPEC_ENV: spec}) as url:
        yield url
