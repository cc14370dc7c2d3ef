"""Fixtures of the integration tests that several modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import SKIP_REASON, RedisServer, find_redis_server


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server for this module; tests may stop and start it (same port)."""
    executable = find_redis_server()
    if executable is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer(executable, tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> RedisServer:
    """The private Redis, running and empty."""
    redis_server.start()
    redis_server.flush()
    return redis_server
