"""Store fixtures: `harness` runs a test once per store kind (see `store_harness.py`)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# tests/ holds shared helpers (redis_server.py); once the lead's tests/conftest.py imports the
# fixture, these lines and the import below can move there.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis_server import redis_url
from store_harness import MemoryHarness, RedisHarness, StoreHarness

__all__ = ["redis_url"]


@pytest.fixture
async def memory_harness() -> AsyncIterator[MemoryHarness]:
    harness = MemoryHarness()
    yield harness
    await harness.close()


@pytest.fixture
async def redis_harness(redis_url: str) -> AsyncIterator[RedisHarness]:
    harness = RedisHarness(redis_url)
    yield harness
    await harness.close()


@pytest.fixture(params=["memory", "redis"])
def harness(request: pytest.FixtureRequest) -> StoreHarness:
    fixture: StoreHarness = request.getfixturevalue(f"{request.param}_harness")
    return fixture
