"""Store fixtures: `harness` runs a test once per store kind (see `store_harness.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

# The Redis fixture lives in tests/redis_server.py so tests/conftest.py can import it for every
# suite; importing it here makes it available to the store tests either way.
from tests.redis_server import redis_cluster_node, redis_url
from tests.stores.store_harness import MemoryHarness, RedisHarness, StoreHarness

__all__ = ["redis_cluster_node", "redis_url"]


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


@pytest.fixture
async def redis_cluster_harness(redis_cluster_node: str) -> AsyncIterator[RedisHarness]:
    harness = RedisHarness(f"redis://{redis_cluster_node}", cluster_node=redis_cluster_node)
    yield harness
    await harness.close()


@pytest.fixture(params=["memory", "redis", "redis_cluster"])
def harness(request: pytest.FixtureRequest) -> StoreHarness:
    fixture: StoreHarness = request.getfixturevalue(f"{request.param}_harness")
    return fixture


@pytest.fixture(params=["redis", "redis_cluster"])
def shared_harness(request: pytest.FixtureRequest) -> StoreHarness:
    """Stores shared by several processes: only they have locks that outlive a dead owner (the
    memory store's lock is released with its owner task, tested with the other contract tests)."""
    fixture: StoreHarness = request.getfixturevalue(f"{request.param}_harness")
    return fixture
