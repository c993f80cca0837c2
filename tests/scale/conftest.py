"""The scale suite's servers: a PostgreSQL primary, its streaming replica and PgBouncer,
started once per module (tests/scale/cluster.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.scale.cluster import Cluster, ClusterUrls, start_cluster
from tests.support import make_settings


@pytest.fixture(scope="module")
def cluster_pool_size() -> int:
    """PgBouncer's server connections per database and role; a module may ask for fewer."""
    return 40


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, cluster_pool_size: int) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("cluster"), pgbouncer_pool_size=cluster_pool_size)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
async def cluster_database(cluster: Cluster) -> ClusterUrls:
    """Rapport's roles and a migrated database on the primary, replayed on the replica."""
    urls = await cluster.provision(f"rapport_scale_{os.getpid()}", make_settings())
    cluster.wait_for_replay()
    return urls
