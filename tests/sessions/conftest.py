"""Session fixtures: the Redis of this test session (`tests/redis_server.py`)."""

from __future__ import annotations

from tests.redis_server import redis_url

__all__ = ["redis_url"]
