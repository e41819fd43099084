"""What a test does when something it needs from the machine is missing: skip, or fail under CI.

A developer without Redis, Node, Chromium or an IPv6 loopback still gets a green run of everything
else, with the reason printed (`-ra`). With `CI` set nothing may skip: CI installs everything
(`.ci/run`), so a missing tool there means a broken machine, and a skip would hide that the tests
behind it never ran.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["unavailable"]


def unavailable(reason: str) -> NoReturn:
    """Skip the current test for `reason`; with `CI` set, fail it instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)
