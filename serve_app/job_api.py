"""Ray's job submission API without the rest of Ray's dashboard.

The job API (`ray job submit`, `JobSubmissionClient`, the reports API) is served by Ray's
dashboard process, which by default also starts every other dashboard module (metrics, nodes,
state, serve, data, train, events, reports…) as a subprocess of its own: measured on the 2-core
box, 11 processes and 226 MiB of idle PSS, which took `make run` past its 1.5 GiB idle budget.
The dashboard takes `--modules-to-load` to start only some, but `ray.init` and `ray start` offer
no way to pass it. While `job_api_only()` is active, a dashboard Ray starts is told to load the
job module (and the node module it depends on) only, so the job API costs two extra
subprocesses. (Its HTTP server still serves the
web UI's static files, whose pages find no data: `--disable-frontend` would turn off the whole
HTTP server, job API included.)

This leans on one private Ray function (`ray._private.services.start_ray_process`, through
which Ray launches each of its processes), pinned by the Ray version in pyproject.toml; if a
Ray upgrade renames it, `job_api_only` fails loudly rather than starting the full dashboard
unnoticed, and `tests/actors/jobs/` (a job submitted through the API) fails too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ray._private import ray_constants, services

# The job module, and the node module: it publishes the head node's id, which the job module
# needs to find the agent that runs a submitted job's driver.
JOB_API_MODULES = ("JobHead", "NodeHead")


def job_api_command(command: list[str]) -> list[str]:
    """The dashboard's command line, loading the job API's modules only. A command that already
    chooses its modules (Ray's own, with the dashboard off) is left as it is."""
    if any(arg.startswith("--modules-to-load") for arg in command):
        return command
    return [*command, f"--modules-to-load={','.join(JOB_API_MODULES)}"]


@contextmanager
def job_api_only() -> Iterator[None]:
    """While active, a Ray dashboard started in this process (by `ray.init` or a
    `ray.cluster_utils.Cluster` head) runs the job submission API and what it needs only."""
    original: Callable[..., Any] = services.start_ray_process

    def start(command: list[str], process_type: str, *args: Any, **kwargs: Any) -> Any:
        if process_type == ray_constants.PROCESS_TYPE_DASHBOARD:
            command = job_api_command(command)
        return original(command, process_type, *args, **kwargs)

    services.start_ray_process = start
    try:
        yield
    finally:
        services.start_ray_process = original
