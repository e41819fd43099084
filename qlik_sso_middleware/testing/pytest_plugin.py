"""A pytest fixture for the simulator; opt in from a conftest with
`from qlik_sso_middleware.testing.pytest_plugin import qlik_simulator  # noqa: F401`
(or `pytest_plugins = ["qlik_sso_middleware.testing.pytest_plugin"]`). Needs pytest-asyncio.

`qlik_simulator` is a default simulator (VP "sso", header auth with `hdr-usr: DIR\\user`, plain
http proxy, mutual-TLS API) on a `ManualClock`; parametrise by overriding `qlik_simulator_options`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from .clock import ManualClock
from .server import QlikSimulator

__all__ = ["qlik_simulator", "qlik_simulator_options"]


@pytest.fixture
def qlik_simulator_options() -> dict[str, Any]:
    """Keyword arguments for `QlikSimulator`; override this fixture to change them."""
    return {"clock": ManualClock()}


@pytest_asyncio.fixture
async def qlik_simulator(qlik_simulator_options: dict[str, Any]) -> AsyncIterator[QlikSimulator]:
    """A running simulator, stopped after the test."""
    async with QlikSimulator(**qlik_simulator_options) as sim:
        yield sim
