"""Reports: batch jobs an admin asks for over the API, and what they produced.

A report is a Ray job and nothing more: its id is the job's submission id (`report_id` ↔
`paygrid-report-<id>`), its status and range come from the job's status and metadata, and its
files from the manifest the job writes last into `<reports_dir>/<id>`. No table holds reports:
Ray's job table already does, and a second copy could disagree with it. The cost: reports live
as long as the Ray cluster's job history (GCS) and the output directory; a restarted cluster
forgets them (their files stay on disk). The cluster side is a `ReportJobs` (the Serve side
implements it with Ray's job API), so this module runs without Ray.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol
from uuid import UUID, uuid4

from engine.errors import NotFound
from engine.jobs.manifest import CHART, read_manifest
from engine.jobs.ranges import SummaryRange
from schema.states import ReportStatus

TRANSACTION_SUMMARY = "transaction_summary"


@dataclass(frozen=True, slots=True)
class ReportJob:
    """What a job runner submits: one report's job (the command that crosses to the cluster)."""

    id: UUID
    kind: str
    span: SummaryRange
    out: Path
    requested_by: UUID | None


@dataclass(frozen=True, slots=True)
class JobState:
    """A report's job as the cluster last saw it."""

    kind: str
    span: SummaryRange
    status: ReportStatus
    message: str | None


class ReportJobs(Protocol):
    """The cluster's job API, as reports need it."""

    async def submit(self, job: ReportJob) -> None:
        """Start `job`; raises `UpstreamError` when the job API cannot take it."""

    async def state(self, report_id: UUID) -> JobState | None:
        """The job of `report_id`, or None if the cluster knows no such job."""


@dataclass(frozen=True, slots=True)
class Report:
    id: UUID
    kind: str
    first: date
    last: date
    status: ReportStatus
    message: str | None
    files: list[str]


class ReportService:
    """Submits report jobs and reads back their state and outputs."""

    def __init__(self, jobs: ReportJobs, *, reports_dir: Path) -> None:
        self._jobs = jobs
        self._dir = reports_dir

    async def request_transaction_summary(
        self, *, first: date, last: date, requested_by: UUID | None
    ) -> Report:
        """Submit a transaction summary of `first`..`last`; a reversed or oversize range is
        `InvalidRequest` naming the field."""
        span = SummaryRange.checked(first, last)
        report_id = uuid4()
        job = ReportJob(
            report_id, TRANSACTION_SUMMARY, span, self._dir / str(report_id), requested_by
        )
        await self._jobs.submit(job)
        return Report(report_id, job.kind, first, last, ReportStatus.PENDING, None, [])

    async def get(self, report_id: UUID) -> Report:
        """A report's state and, once it succeeded, its files; `NotFound` if unknown."""
        state = await self._jobs.state(report_id)
        if state is None:
            raise NotFound(f"no report {report_id}", param="id")
        files: list[str] = []
        if state.status is ReportStatus.SUCCEEDED:
            manifest = await asyncio.to_thread(read_manifest, self._dir / str(report_id))
            files = list(manifest["files"]) if manifest else []
        return Report(
            report_id,
            state.kind,
            state.span.first,
            state.span.last,
            state.status,
            state.message,
            files,
        )

    async def chart(self, report_id: UUID) -> bytes:
        """The PNG chart of a finished report; `NotFound` if the report or its chart is not
        there (yet)."""
        report = await self.get(report_id)
        if CHART not in report.files:
            raise NotFound(f"report {report_id} has no chart (status {report.status})", param="id")
        return await asyncio.to_thread((self._dir / str(report_id) / CHART).read_bytes)
