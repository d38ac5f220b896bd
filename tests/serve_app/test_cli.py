"""The operator surface: the paygrid CLI against a live database, and the shipped configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from engine.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the paygrid console script with exactly `env`."""
    return subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "serve_app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def paygrid(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI against the test database."""
    return cli(
        {
            **os.environ,
            "DATABASE_URL": settings.database_dsn,
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

    revoked = paygrid(migrated, "keys", "revoke", key_id)
    assert revoked.returncode == 0
    listed = paygrid(migrated, "keys", "list")
    assert "revoked" in next(x for x in listed.stdout.splitlines() if x.startswith(key_id))


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
