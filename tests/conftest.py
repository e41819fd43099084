"""Shared fixtures: the Qlik simulator and a Starlette app behind the middleware, on real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from qlik_sso_middleware.target import reqwest_installed
from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

#: Modules that import pyreqwest at the top: not collected without it (their tests are `fast`).
collect_ignore = [] if reqwest_installed() else ["proxy/test_reqwest_engine.py"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (never skip) what this install cannot run: `fast` tests need pyreqwest (the
    `[fast]` extra), `no_fast` tests need its absence. `.ci/run` runs the suite with and without
    it, so each runs once there."""
    absent = "fast" if not reqwest_installed() else "no_fast"
    deselected = [item for item in items if item.get_closest_marker(absent) is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item.get_closest_marker(absent) is None]


@pytest.fixture
async def simulator() -> AsyncIterator[QlikSimulator]:
    """A header-auth virtual proxy `sso` (header `hdr-usr`, dynamic directory), like the demo."""
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        yield sim
