"""The opt-in `qlik_simulator` fixture works when imported by a test module."""

from __future__ import annotations

import httpx2 as httpx

from qlik_sso_middleware.testing import ManualClock, QlikSimulator
from qlik_sso_middleware.testing.pytest_plugin import (  # noqa: F401 - fixtures used by name
    qlik_simulator,
    qlik_simulator_options,
)


async def test_fixture_gives_a_running_simulator_on_a_manual_clock(
    qlik_simulator: QlikSimulator,  # noqa: F811 - the imported fixture
) -> None:
    assert isinstance(qlik_simulator.clock, ManualClock)
    async with httpx.AsyncClient(base_url=qlik_simulator.proxy_url) as client:
        response = await client.get("/sso/qps/user", headers={"hdr-usr": "ACME\\alice"})
    assert response.json()["userId"] == "alice"
