"""The WebSocket client pieces both relays share (the relays' own tests drive them end to end:
tests/proxy/test_websocket_relay.py for redirects and hang-ups, tests/cli/test_serve_websocket.py)."""

from __future__ import annotations

import logging

import pytest

from qlik_sso_middleware.proxy.ws_client import quiet_logger, wire_close_code


@pytest.mark.parametrize(
    ("code", "sent"),
    [(1000, 1000), (1001, 1001), (1005, 1000), (1006, 1011), (1015, 1011), (4321, 4321)],
)
def test_codes_that_may_not_be_sent_are_mapped(code: int, sent: int) -> None:
    assert wire_close_code(code) == sent


def test_quiet_logger_drops_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="qlik_sso_middleware.test.quiet")
    log = quiet_logger("qlik_sso_middleware.test.quiet")
    log.debug("> Cookie: X-Qlik-Session-sso=secret")
    log.warning("handshake failed")
    assert [r.getMessage() for r in caplog.records] == ["handshake failed"]
    assert not log.isEnabledFor(logging.DEBUG)
