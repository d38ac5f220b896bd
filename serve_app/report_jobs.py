"""Report jobs on Ray's job submission API: the cluster side of `engine.jobs.reports`.

Each report is submitted as `python -m <driver> --from … --to … --out …` under the submission id
`paygrid-report-<id>`, with the report's kind and range in the job's metadata, so the job's
status is the report's status and nothing else needs storing. The driver runs with this
replica's interpreter (`sys.executable`: the one paygrid is installed in) and finds the database
through `PAYGRID_DATA_DIR`, passed to it: the instance published there, else `DATABASE_URL` in
the cluster's environment (a path is passed, never the DSN: a job's runtime environment is shown
in the dashboard).

The SDK is synchronous (requests), so every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Callable
from datetime import date
from typing import TypeVar
from uuid import UUID

from ray.job_submission import JobStatus, JobSubmissionClient

from engine.errors import UpstreamError
from engine.jobs.ranges import SummaryRange
from engine.jobs.reports import TRANSACTION_SUMMARY, JobState, ReportJob
from schema.states import ReportStatus

A = TypeVar("A")
R = TypeVar("R")

_PREFIX = "paygrid-report-"
_DRIVERS = {TRANSACTION_SUMMARY: "actors.jobs.transaction_summary"}
_STATUS = {
    JobStatus.PENDING: ReportStatus.PENDING,
    JobStatus.RUNNING: ReportStatus.RUNNING,
    JobStatus.SUCCEEDED: ReportStatus.SUCCEEDED,
    JobStatus.FAILED: ReportStatus.FAILED,
    JobStatus.STOPPED: ReportStatus.STOPPED,
}


class JobsApiUnavailable(UpstreamError):
    default_code = "jobs_api_unavailable"


class RayReportJobs:
    """`ReportJobs` on the job API at `address` (Ray's dashboard URL)."""

    def __init__(self, address: str, *, data_dir: str) -> None:
        self._address = address
        self._data_dir = data_dir
        self._client: JobSubmissionClient | None = None

    def _connected(self) -> JobSubmissionClient:
        # Made on first use: the constructor calls the API, and a replica must start without it.
        if not self._address:
            raise JobsApiUnavailable(
                "the job submission API is not enabled (PAYGRID_JOBS_API_URL is empty)"
            )
        if self._client is None:
            self._client = JobSubmissionClient(self._address)
        return self._client

    def _submit(self, job: ReportJob) -> None:
        command = [sys.executable, "-m", _DRIVERS[job.kind]]
        command += ["--from", job.span.first.isoformat(), "--to", job.span.last.isoformat()]
        command += ["--out", str(job.out)]
        self._connected().submit_job(
            entrypoint=shlex.join(command),
            submission_id=f"{_PREFIX}{job.id}",
            runtime_env={"env_vars": {"PAYGRID_DATA_DIR": self._data_dir}},
            metadata={
                "paygrid_report": job.kind,
                "from": job.span.first.isoformat(),
                "to": job.span.last.isoformat(),
                "api_key_id": str(job.requested_by or ""),
            },
        )

    def _state(self, report_id: UUID) -> JobState | None:
        try:
            info = self._connected().get_job_info(f"{_PREFIX}{report_id}")
        except RuntimeError as exc:
            if "status code 404" in str(exc):
                return None
            raise
        metadata = info.metadata or {}
        if "paygrid_report" not in metadata:
            return None
        span = SummaryRange(
            date.fromisoformat(metadata["from"]), date.fromisoformat(metadata["to"])
        )
        status = _STATUS[JobStatus(info.status)]
        # Only the first line: Ray appends the job's last log lines, which are for operators.
        message = None if status is ReportStatus.SUCCEEDED else (info.message or "").split("\n")[0]
        return JobState(metadata["paygrid_report"], span, status, message)

    async def submit(self, job: ReportJob) -> None:
        """Submit `job`; the job API unreachable or refusing is a 503."""
        await self._call(self._submit, job)

    async def state(self, report_id: UUID) -> JobState | None:
        """The job of `report_id`, None if the cluster has none."""
        return await self._call(self._state, report_id)

    async def _call(self, fn: Callable[[A], R], arg: A) -> R:
        try:
            return await asyncio.to_thread(fn, arg)
        except JobsApiUnavailable:
            raise
        except (RuntimeError, OSError) as exc:
            raise JobsApiUnavailable(f"Ray's job API did not answer: {exc}") from exc
