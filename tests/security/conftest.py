"""Fixtures of the attack matrix: one simulator + app per module (fast), a clean log per test."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy
from tests.redis_server import redis_url

from ..apps import build_app
from ..servers import serve
from .helpers import Stack, assert_no_secret, log_texts, simulator_secrets

__all__ = ["redis_url"]

ALLOWED_ORIGIN = "https://portal.example"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_stack() -> AsyncIterator[Stack]:
    """Header VP `sso` (header `hdr-usr`), the test app, `https://portal.example` allowed."""
    vp = VirtualProxy(prefix="sso", header_name="hdr-usr", host_allow_list=("portal.example",))
    async with QlikSimulator([vp]) as sim:
        app, sso = build_app(sim, allowed_origins=[ALLOWED_ORIGIN])
        async with serve(app) as url:
            yield Stack(sim, url, sso)


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
