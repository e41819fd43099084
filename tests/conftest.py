"""Shared fixtures: the Qlik simulator and a Starlette app behind the middleware, on real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy


@pytest.fixture
async def simulator() -> AsyncIterator[QlikSimulator]:
    """A header-auth virtual proxy `sso` (header `hdr-usr`, dynamic directory), like the demo."""
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        yield sim
