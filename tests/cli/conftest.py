"""`cli.main` and `serve` configure logging for the process they run in (root handler, levels);
here that process is the test run, so each test gets the logging state it started with back and
later tests' `caplog` sees what it would have seen without the CLI tests before it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

# The HTTP libraries `cli.main` quiets, and the package's own (`serve` sets `[logging] level`).
_QUIETED = ("httpx", "httpx2", "httpcore", "httpcore2", "websockets", "qlik_sso_middleware")


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in _QUIETED}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
