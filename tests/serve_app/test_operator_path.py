"""The README's cluster path, typed as an operator types it (each command a subprocess, from
the checkout, with the virtualenv's `bin` on PATH): `ray start --head` with token
authentication, `paygrid migrate`, `paygrid keys create`, `serve start` on a free port,
`serve deploy serve_app/serve_config.yaml`, `serve status` until RUNNING, a purchase over HTTP
and its webhook at a local receiver, `serve shutdown -y`, and the cluster stopped.

The cluster is this test's own: a fresh database on the session's PostgreSQL (created and
dropped here), its own Redis database, free ports for Ray's GCS (never 6379), dashboard, client
server and agent and for Serve's HTTP, and its own `--temp-dir`. Where the operator types
`ray stop`, which stops every Ray process on the machine (other clusters included), the test
stops exactly the processes of its own temp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
import yaml
from aiohttp import web

from engine.keys.master import new_master_key
from engine.runtime import local
from tests.factories import Api, payment_body
from tests.local_server import serving
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _on_database(dsn: str, name: str) -> str:
    base, _, query = dsn.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


@pytest.fixture
async def database(infra: dict[str, str]) -> AsyncIterator[str]:
    """A fresh database on the session's PostgreSQL server, dropped afterwards."""
    name = f"paygrid_operator_{uuid.uuid4().hex[:12]}"
    server = infra["database_url"]
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _on_database(server, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def temp_dir() -> Iterator[Path]:
    """Ray's --temp-dir: short, as its socket paths must be."""
    path = Path(tempfile.mkdtemp(prefix="pg-op-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _operator_environment(database_url: str, redis_url: str, data_dir: Path) -> dict[str, str]:
    """What the operator's shell holds: this machine's environment without the test session's
    own Ray, Serve and paygrid settings, plus what the README asks for."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAY_", "PAYGRID_")) and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    return {
        **inherited,
        "PATH": os.pathsep.join([str(BIN), inherited.get("PATH", "")]),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PAYGRID_SECRET_KEY": secrets.token_hex(32),
        "PAYGRID_MASTER_KEY": new_master_key(),
        "PAYGRID_DATA_DIR": str(data_dir),
        # The receiver is on 127.0.0.1, which webhooks refuse unless allowed.
        "PAYGRID_WEBHOOK_ALLOW_PRIVATE": "true",
        # Ray's token authentication, for the cluster and every CLI that talks to it.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }


async def _run(env: dict[str, str], *command: str, timeout_s: float = 180) -> tuple[int, str]:
    """Run `command` as typed in the checkout; its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{' '.join(command)} ran past {timeout_s} s") from None
    return int(process.returncode or 0), out.decode(errors="replace")


async def _ok(env: dict[str, str], *command: str, timeout_s: float = 180) -> str:
    status, out = await _run(env, *command, timeout_s=timeout_s)
    assert status == 0, f"{' '.join(command)} exited {status}:\n{out[-4000:]}"
    return out


def _stop_cluster(temp_dir: Path) -> None:
    """Stop every process of the cluster started with `temp_dir`, and only those: Ray's own
    processes name the temp dir on their command line, their workers are their children."""
    mine = []
    for process in psutil.process_iter(["cmdline"]):
        if str(temp_dir) in " ".join(process.info["cmdline"] or []):
            mine.append(process)
            with contextlib.suppress(psutil.Error):
                mine.extend(process.children(recursive=True))
    for process in mine:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(mine, timeout=15)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


async def test_the_documented_cluster_path_works_as_typed(
    database: str, infra: dict[str, str], temp_dir: Path
) -> None:
    # Its own Redis database: the session's instance uses another.
    redis_url = f"{infra['redis_url'].rsplit('/', 1)[0]}/{secrets.randbelow(7) + 8}"
    env = _operator_environment(database, redis_url, temp_dir / "data")
    gcs, dashboard, client, agent, http_port = (local.free_port() for _ in range(5))
    dashboard_url = f"http://127.0.0.1:{dashboard}"
    bodies: list[dict[str, object]] = []

    async def receive(request: web.Request) -> web.Response:
        bodies.append(json.loads(await request.read()))
        return web.Response(status=200)

    try:
        await _ok(
            env,
            *("ray", "start", "--head", "--port", str(gcs), "--temp-dir", str(temp_dir)),
            *("--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard)),
            *("--ray-client-server-port", str(client)),
            *("--dashboard-agent-listen-port", str(agent), "--disable-usage-stats"),
        )
        # Without the token mode the serve CLI cannot talk to such a cluster (the README says so).
        anonymous = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH_")}
        status, out = await _run(anonymous, "serve", "status", "--address", dashboard_url)
        assert status != 0, out

        assert "applied" in await _ok(env, "paygrid", "migrate")
        created = await _ok(
            env,
            *("paygrid", "keys", "create", "--name", "operator"),
            *("--scopes", "payments:write,payments:read,webhooks"),
        )
        secret = created.strip().splitlines()[-1]
        await _ok(
            env,
            *("serve", "start", "--address", f"127.0.0.1:{gcs}"),
            *("--http-host", "127.0.0.1", "--http-port", str(http_port)),
        )
        await _ok(env, "serve", "deploy", "serve_app/serve_config.yaml", "--address", dashboard_url)
        seen: list[str] = []

        async def running() -> bool:
            _, out = await _run(env, "serve", "status", "--address", dashboard_url)
            app = ((yaml.safe_load(out) or {}).get("applications") or {}).get("paygrid") or {}
            seen[:] = [str(app.get("status")), str(app.get("message", ""))[-2000:]]
            assert seen[0] != "DEPLOY_FAILED", seen
            return seen[0] == "RUNNING"

        await wait_until(running, timeout_s=400, what=lambda: f"serve status RUNNING: {seen}")

        async with (
            serving(receive) as receiver,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as http,
        ):
            api = Api(http, secret)
            hook = {"url": f"{receiver}/", "enabled_events": ["payment.succeeded"]}
            endpoint = await api.post("/api/webhooks/endpoints", hook)
            assert endpoint.status_code == 200, endpoint.text
            answer = await api.post(
                "/api/payments/purchase", payment_body(amount=1234), idempotency_key="op-1"
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["status"] == "succeeded"
            payment_id = answer.json()["data"]["id"]

            async def delivered() -> bool:
                return any(payment_id in json.dumps(body) for body in bodies)

            await wait_until(delivered, timeout_s=120, what="the purchase's webhook")

        await _ok(env, "serve", "shutdown", "-y", "--address", dashboard_url)
    finally:
        _stop_cluster(temp_dir)
