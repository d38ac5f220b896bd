"""The session cluster's dashboard runs as `paygrid serve` starts it (`serve_app/job_api.py`):
the job submission API answers on 127.0.0.1, and no other dashboard module runs (the reason it
fits the idle budget). Submitting the summary job through it: `tests/actors/jobs/`."""

from __future__ import annotations

import httpx
import psutil
from ray.cluster_utils import Cluster

from engine.config import Settings
from serve_app.job_api import JOB_API_MODULES, job_api_command


async def test_the_dashboard_serves_the_job_api_and_nothing_else(
    cluster: Settings, ray_nodes: Cluster, jobs_api_url: str
) -> None:
    assert jobs_api_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=jobs_api_url, timeout=30) as client:
        version = await client.get("/api/version")
        assert version.status_code == 200, version.text
        assert (await client.get("/api/jobs/")).status_code == 200
        # Modules left out: Serve's applications (ServeHead), the state API (StateHead).
        assert (await client.get("/api/serve/applications/")).status_code == 404
        assert (await client.get("/api/v0/actors")).status_code == 404
    dashboards = [
        p
        for p in psutil.process_iter(["cmdline"])
        if any(arg.endswith("dashboard/dashboard.py") for arg in p.info["cmdline"] or [])
        and any(f"--port={jobs_api_url.rsplit(':', 1)[1]}" == a for a in p.info["cmdline"])
    ]
    assert len(dashboards) == 1
    # Its module subprocesses: the job module's and the node module's, nothing else.
    assert len(dashboards[0].children()) == len(JOB_API_MODULES)


def test_the_dashboard_command_gets_the_job_module_unless_it_chose_its_own() -> None:
    full = ["python", "dashboard.py", "--port=8265"]
    assert job_api_command(full) == [*full, "--modules-to-load=JobHead,NodeHead"]
    off = ["python", "dashboard.py", "--modules-to-load=UsageStatsHead", "--disable-frontend"]
    assert job_api_command(off) == off
