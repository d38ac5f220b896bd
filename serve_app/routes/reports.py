"""Reports (scope `admin`): submit a transaction summary as a Ray job, follow it, fetch its
chart. A report is its Ray job (see `engine.jobs.reports`)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from starlette.responses import Response

from engine.jobs.manifest import CHART
from engine.jobs.reports import Report
from schema.api.common import ERROR_RESPONSES, Envelope
from schema.api.reports import ReportPublic, TransactionSummaryCreate
from serve_app import responses
from serve_app.deps import AdminKey, CorrelationId, State

router = APIRouter(prefix="/api/reports", tags=["reports"], responses=ERROR_RESPONSES)

ReportEnvelope = Envelope[ReportPublic]


def _public(report: Report) -> dict[str, object]:
    chart = f"/api/reports/{report.id}/chart.png" if CHART in report.files else None
    return ReportPublic(
        id=report.id,
        kind=report.kind,
        first=report.first,
        last=report.last,
        status=report.status,
        message=report.message,
        files=report.files,
        chart_url=chart,
    ).model_dump(mode="json")


@router.post(
    "/transaction-summary",
    operation_id="create_transaction_summary",
    response_model=ReportEnvelope,
    status_code=202,
)
async def create_transaction_summary(
    body: TransactionSummaryCreate, key: AdminKey, state: State, cid: CorrelationId
) -> Response:
    """Submit a summary of `from`..`to` (UTC days, both included); answers before it runs."""
    report = await state.reports.request_transaction_summary(
        first=body.first, last=body.last, requested_by=key.id
    )
    return responses.ok(_public(report), cid, status_code=202)


@router.get("/{report_id}", operation_id="retrieve_report", response_model=ReportEnvelope)
async def retrieve(report_id: UUID, key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """The report's status and, once it succeeded, the files it produced."""
    return responses.ok(_public(await state.reports.get(report_id)), cid)


@router.get(
    "/{report_id}/chart.png",
    operation_id="retrieve_report_chart",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def chart(report_id: UUID, key: AdminKey, state: State) -> Response:
    """The daily-volume chart of a finished report."""
    return Response(await state.reports.chart(report_id), media_type="image/png")
