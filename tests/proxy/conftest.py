"""`ws_client`: the relay tests run on both upstream WebSocket clients (proxy/ws_client.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qlik_sso_middleware.proxy import ws_client


@pytest.fixture(params=ws_client.WS_CLIENTS)
def ws_client_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """Open upstream sockets with this client for the test, then restore the default."""
    before = ws_client.current_ws_client()
    ws_client.use_ws_client(request.param)
    yield str(request.param)
    ws_client.use_ws_client(before)
