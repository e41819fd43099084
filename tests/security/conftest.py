"""Fixtures of the attack matrix: one simulator + app per module (fast), a clean log per test.

A module that sets `TARGETS = OFFLOAD_TARGETS` runs every case once more per front proxy of offload
mode (nginx, Caddy, started from `qlik-sso front-config`'s output): the same attacks, sent to the
front proxy instead of the app.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from qlik_sso_middleware import FrontProxy
from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy
from tests.redis_server import redis_url

from ..apps import build_app
from ..offload.front import SECRET, front_proxy
from ..servers import serve
from .helpers import Stack, assert_no_secret, log_texts, simulator_secrets

__all__ = ["OFFLOAD_TARGETS", "redis_url"]

ALLOWED_ORIGIN = "https://portal.example"
#: The in-process middleware, and offload mode behind each front proxy.
OFFLOAD_TARGETS = ("in-process", "nginx", "caddy")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    targets = getattr(metafunc.module, "TARGETS", None)
    if targets and "module_stack" in metafunc.fixturenames:
        metafunc.parametrize("module_stack", targets, indirect=True, scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    """Header VP `sso` (header `hdr-usr`), the test app, `https://portal.example` allowed; in
    front of it nothing (in-process, the default), or nginx or Caddy in offload mode."""
    target = getattr(request, "param", "in-process")
    vp = VirtualProxy(prefix="sso", header_name="hdr-usr", host_allow_list=("portal.example",))
    async with QlikSimulator([vp]) as sim:
        front = FrontProxy(SECRET) if target != "in-process" else None
        app, sso = build_app(sim, allowed_origins=[ALLOWED_ORIGIN], front_proxy=front)
        async with serve(app) as url:
            if front is None:
                yield Stack(sim, url, sso)
                return
            async with front_proxy(target, qlik_url=sim.proxy_url, app_url=url) as front_url:
                yield Stack(sim, front_url, sso, front=target)


@pytest.fixture
def stack(module_stack: Stack) -> Stack:
    """The module's stack with the simulator's log cleared and every fault off."""
    module_stack.sim.faults.reset()
    module_stack.sim.clear_log()
    return module_stack


@pytest.fixture(autouse=True)
def no_secret_in_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Every test of the matrix runs with DEBUG logging; none may log a secret of its stack."""
    caplog.set_level(logging.DEBUG)
    stack: Stack | None = None
    if "stack" in request.fixturenames:
        stack = request.getfixturevalue("stack")
    yield
    if stack is not None:
        secrets = simulator_secrets(stack.sim)
        if secrets:
            assert_no_secret(log_texts(caplog), secrets)
