"""The operator surface: the paygrid CLI against a live database, and the shipped configs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import yaml
from ray.serve.schema import ServeDeploySchema

from engine.config import Settings
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey, decode_master_key, new_master_key
from tests.console import cli
from tests.engine.rows import add_customer

ROOT = Path(__file__).resolve().parents[2]


def paygrid(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI against the test database."""
    return cli(
        {
            **os.environ,
            "DATABASE_URL": settings.database_dsn,
            "REDIS_URL": settings.redis_dsn,
            "PAYGRID_SECRET_KEY": settings.secret_key.get_secret_value(),
            "PAYGRID_DATA_DIR": settings.data_dir,
        },
        *args,
    )


def test_migrate_status_and_keys_lifecycle(migrated: Settings) -> None:
    status = paygrid(migrated, "migrate", "--status")
    assert status.returncode == 0, status.stderr
    assert "0001_core" in status.stdout
    assert "pending" not in status.stdout
    assert paygrid(migrated, "migrate").stdout.strip() == "up to date"

    created = paygrid(
        migrated,
        "keys",
        "create",
        "--name",
        "cli",
        "--scopes",
        "payments:write,webhooks",
        "--expires-in-days",
        "30",
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("pgk_")
    key_id = created.stdout.split()[2]

    listed = paygrid(migrated, "keys", "list")
    line = next(x for x in listed.stdout.splitlines() if x.startswith(key_id))
    assert "payments:write,webhooks" in line
    assert "active" in line
    assert secret not in listed.stdout

    rotated = paygrid(migrated, "keys", "rotate", key_id, "--grace-s", "0")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new_secret = rotated.stdout.strip().splitlines()[-1]
    assert new_secret.startswith("pgk_")
    assert new_secret != secret

    revoked = paygrid(migrated, "keys", "revoke", key_id)
    assert revoked.returncode == 0
    listed = paygrid(migrated, "keys", "list")
    assert "revoked" in next(x for x in listed.stdout.splitlines() if x.startswith(key_id))


def test_keys_carry_their_rate_limit_and_allow_list(migrated: Settings) -> None:
    created = paygrid(
        migrated,
        "keys",
        "create",
        "--name",
        "bench",
        "--scopes",
        "payments:write",
        "--rate-limit",
        "unlimited",
        "--allow-ip",
        "10.0.0.0/8",
        "--allow-ip",
        "192.0.2.7",
    )
    assert created.returncode == 0, created.stdout + created.stderr
    key_id = created.stdout.split()[2]
    listed = paygrid(migrated, "keys", "list")
    line = next(x for x in listed.stdout.splitlines() if x.startswith(key_id))
    assert "rate_limit=unlimited" in line
    assert "allowed_ips=10.0.0.0/8,192.0.2.7/32" in line
    for flag, value in (("--rate-limit", "lots"), ("--allow-ip", "10.0.0.300")):
        bad = paygrid(migrated, "keys", "create", "--name", "x", "--scopes", "admin", flag, value)
        assert bad.returncode == 1
        assert "error:" in bad.stdout


def test_cli_refuses_unknown_scopes_and_missing_database(
    migrated: Settings, tmp_path: Path
) -> None:
    bad = paygrid(migrated, "keys", "create", "--name", "x", "--scopes", "root")
    assert bad.returncode == 1
    assert "unknown scope" in bad.stdout
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    lost = cli({**env, "PAYGRID_DATA_DIR": str(tmp_path)}, "migrate")
    assert lost.returncode == 1
    assert "no running paygrid" in lost.stdout


async def _seed_data_key(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        async with conn.transaction():
            customer = await add_customer(conn)
            await Keyring.from_settings(settings).customer_key(
                conn, purpose="payment_methods", customer_id=customer
            )
    finally:
        await conn.close()


async def _master_key_ids(settings: Settings) -> set[str]:
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        rows = await conn.fetch("SELECT DISTINCT master_key_id FROM data_keys")
    finally:
        await conn.close()
    return {r["master_key_id"] for r in rows}


def test_rotate_master_rewraps_to_a_new_key_and_back(migrated: Settings) -> None:
    asyncio.run(_seed_data_key(migrated))
    current = migrated.master_key.get_secret_value()
    new = new_master_key()
    env = {
        **os.environ,
        "DATABASE_URL": migrated.database_dsn,
        "PAYGRID_SECRET_KEY": migrated.secret_key.get_secret_value(),
        "PAYGRID_DATA_DIR": migrated.data_dir,
    }

    def rotate(master: str, previous: str | None) -> subprocess.CompletedProcess[str]:
        keys = {"PAYGRID_MASTER_KEY": master}
        if previous is not None:
            keys["PAYGRID_MASTER_KEY_PREVIOUS"] = previous
        return cli({**env, **keys}, "keys", "rotate-master")

    forward = rotate(new, current)
    assert forward.returncode == 0, forward.stdout + forward.stderr
    new_id = MasterKey(decode_master_key(new)).id
    assert f"under master key {new_id}" in forward.stdout
    assert asyncio.run(_master_key_ids(migrated)) == {new_id}
    # Without the key they are wrapped under, nothing moves, and the error says what to set.
    stuck = rotate(current, None)
    assert stuck.returncode == 1
    assert "PAYGRID_MASTER_KEY_PREVIOUS" in stuck.stdout
    # Back under the session's key, for the tests that run after this one.
    back = rotate(current, new)
    assert back.returncode == 0, back.stdout + back.stderr
    assert asyncio.run(_master_key_ids(migrated)) == {MasterKey(decode_master_key(current)).id}


def test_serve_config_is_valid_and_autoscales() -> None:
    config = yaml.safe_load((ROOT / "serve_app" / "serve_config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(config)
    [app] = schema.applications
    assert app.import_path == "serve_app.app:app_builder"
    [deployment] = app.deployments
    autoscaling = deployment.autoscaling_config
    assert isinstance(autoscaling, dict)
    assert autoscaling["max_replicas"] > 1
    assert schema.http_options.host == "127.0.0.1"


def test_cluster_config_keeps_gcs_off_the_redis_port() -> None:
    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    assert cluster["max_workers"] > cluster["min_workers"]
    head = " ".join(cluster["head_start_ray_commands"])
    assert "--port=6380" in head
    assert "6379" not in head


def test_backup_verify_restore_and_migrate_check(migrated: Settings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": migrated.database_dsn,
        "PAYGRID_SECRET_KEY": migrated.secret_key.get_secret_value(),
        "PAYGRID_MASTER_KEY": migrated.master_key.get_secret_value(),
        "PAYGRID_DATA_DIR": str(tmp_path / "data"),
    }
    check = cli(env, "migrate", "--check")
    assert (check.returncode, check.stdout.strip()) == (0, "compatible with this release")

    out = tmp_path / "cli.backup"
    made = cli(env, "backup", "--out", str(out))
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stdout.startswith(f"wrote {out}: taken ")
    offline = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    verified = cli(offline, "backup", "--verify", str(out))  # needs the key, no database
    assert verified.returncode == 0, verified.stdout + verified.stderr
    wrong = cli({**env, "PAYGRID_MASTER_KEY": new_master_key()}, "backup", "--verify", str(out))
    assert wrong.returncode == 1
    assert "error: the backup was encrypted under master key" in wrong.stdout
    refused = cli(env, "restore", str(out))
    assert refused.returncode == 1
    assert "the target database is not empty" in refused.stdout

    target = asyncio.run(_new_database(migrated.database_dsn))
    try:
        restored = cli({**env, "DATABASE_URL": target}, "restore", str(out))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "match its manifest" in restored.stdout
        after = cli({**env, "DATABASE_URL": target}, "migrate", "--check")
        assert after.returncode == 0, after.stdout
    finally:
        asyncio.run(_drop_database(migrated.database_dsn, target))


async def _new_database(dsn: str) -> str:
    name = f"paygrid_cli_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def _drop_database(dsn: str, target: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(target).path[1:]}" WITH (FORCE)')
    finally:
        await conn.close()
