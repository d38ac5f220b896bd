"""What every benchmark stands on: a throwaway paygrid instance (embedded PostgreSQL and Redis
in a temporary directory), the Serve app running on it, and where the results go.

`serving` may be entered many times in one process (one deployment per configuration): each time
it starts a fresh Ray on its own GCS port and stops it, HAProxy included, on the way out."""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from engine.config import Settings
from engine.runtime import local


def machine() -> str:
    model = "unknown cpu"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


async def wait_ready(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up")
            await asyncio.sleep(0.5)


@contextmanager
def instance(**overrides: Any) -> Iterator[Settings]:
    """Settings of a fresh instance on embedded servers, removed afterwards. Environment
    settings (PAYGRID_*) apply; `overrides` win."""
    workdir = Path(tempfile.mkdtemp(prefix="paygrid-bench-"))
    base = Settings(
        data_dir=str(workdir),
        port=local.free_port(),
        secret_key=SecretStr(uuid.uuid4().hex * 2),
        **overrides,
    )
    runtime = local.start(base)
    try:
        yield runtime.settings
    finally:
        runtime.stop()
        local.remove_data(workdir)


@dataclass(frozen=True)
class Serving:
    """A running deployment: where it answers, the settings it was fitted to, Ray's CPUs."""

    url: str
    settings: Settings
    cpus: int


# Ports Ray's other components take by default: a GCS port drawn at random must avoid them, or
# `ray.init` refuses to start (seen: the dashboard agent's 52365).
_RAY_DEFAULT_PORTS = frozenset({6379, 8265, 10001, 52365})


def _gcs_port() -> int:
    while (port := local.free_port()) in _RAY_DEFAULT_PORTS:
        pass
    return port


@contextmanager
def serving(settings: Settings) -> Iterator[Serving]:
    """Ray and the Serve app, as `make run` starts them, once the API is healthy. Counts left
    at 0 are fitted to the CPUs Ray sees; the fitted settings come back in `Serving`."""
    from serve_app import environment

    # Serve reads its environment when ray.serve is first imported.
    environment.apply(settings.data_dir, fast_ingress=settings.fast_ingress)
    from serve_app.app import cluster_cpus
    from serve_app.runner import deploy, start_ray, stop_ray

    # Fresh GCS and API ports per start: the previous Ray's and HAProxy's may still be closing.
    os.environ["RAY_GCS_SERVER_PORT"] = str(_gcs_port())
    settings = settings.model_copy(update={"port": local.free_port()})
    start_ray()
    try:
        fitted = deploy(settings)
        base = f"http://127.0.0.1:{fitted.port}"
        asyncio.run(wait_ready(base + "/health"))
        yield Serving(base, fitted, cluster_cpus())
    finally:
        stop_ray()


def save(name: str, report: str) -> None:
    """Print a results table and keep it under bench/results/."""
    print(report)
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.md").write_text(report + "\n")
