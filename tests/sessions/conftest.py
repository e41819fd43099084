"""Session fixtures: the Redis of this test session (`tests/redis_server.py`), and the simulated
Qlik Cloud tenant on a manual clock (`tests/testing/cloud/conftest.py`) for `CloudSessions`."""

from __future__ import annotations

from tests.redis_server import redis_url
from tests.testing.cloud.conftest import clock, signing_key, tenant

__all__ = ["clock", "redis_url", "signing_key", "tenant"]
