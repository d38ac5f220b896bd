"""The console's overview: payments and failures per day over the last two weeks (scope
`payments:read`, read from PostgreSQL), and the last hour's request rate and latency from the
cluster's metrics (scope `admin`, as `/metrics` is internal), drawn as server-side SVG."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.responses import Response

from engine.auth.keys import Scope
from engine.metrics.traffic import TrafficMinute
from engine.money import exponent
from engine.payments.volume import DayVolume, daily_volume
from serve_app.console.charts import Series, bars, lines
from serve_app.console.pages import ConsoleRoute, page
from serve_app.console.session import PaymentsReader
from serve_app.deps import State

router = APIRouter(route_class=ConsoleRoute)


def _volume_charts(days: list[str], rows: list[DayVolume]) -> dict[str, object]:
    index = {d: i for i, d in enumerate(days)}
    went_through = [0.0] * len(days)
    failed = [0.0] * len(days)
    amounts: dict[str, list[float | None]] = defaultdict(lambda: [0.0] * len(days))
    for r in rows:
        i = index[r.day.isoformat()]
        went_through[i] += r.payments - r.failed
        failed[i] += r.failed
        amounts[r.currency][i] = (amounts[r.currency][i] or 0) + r.amount
    totals = {c: sum(v or 0 for v in values) for c, values in amounts.items()}
    # The currency that moved most gets the amount chart; the table lists every one.
    main = max(totals, key=lambda c: totals[c]) if totals else None
    rates = [
        100 * f / (f + w) if f + w else None for f, w in zip(failed, went_through, strict=True)
    ]
    short = [d[5:] for d in days]
    charts: dict[str, object] = {
        "payments": bars(
            "Payments per day: went through and failed",
            short,
            [Series("went through", went_through, "c-good"), Series("failed", failed, "c-bad")],
        ),
        "declines": lines(
            "Share of payments failed per day, percent",
            short,
            [Series("failed %", rates, "c-bad")],
            fmt=lambda v: f"{v:.3g}%",
        ),
        "amount": None,
        "main_currency": main,
    }
    if main is not None:
        # Drawn in major units: the axis reads 150, not 15000 cents.
        places = 10 ** exponent(main)
        major = [None if v is None else v / places for v in amounts[main]]
        charts["amount"] = bars(
            f"Amount per day in {main}", short, [Series(main, major, "c-accent")]
        )
    return charts


def _traffic_charts(minutes: list[TrafficMinute]) -> dict[str, object]:
    labels = [datetime.fromtimestamp(m.start_s, UTC).strftime("%H:%M") for m in minutes]

    def ms(value: float | None) -> float | None:
        return None if value is None else value * 1000

    return {
        "rate": lines(
            "Requests per second, each minute of the last hour",
            labels,
            [Series("requests/s", [m.rate_per_s for m in minutes], "c-accent")],
        ),
        "latency": lines(
            "Request latency in milliseconds (median and 95th percentile), last hour",
            labels,
            [
                Series("p50 ms", [ms(m.p50_s) for m in minutes], "c-accent"),
                Series("p95 ms", [ms(m.p95_s) for m in minutes], "c-warn"),
            ],
        ),
        "busy": any(m.rate_per_s > 0 for m in minutes),
    }


@router.get("/overview")
async def overview(session: PaymentsReader, state: State) -> Response:
    days, rows = await daily_volume(state.db)
    labels = [d.isoformat() for d in days]
    traffic = None
    minutes: list[TrafficMinute] = []
    # The metrics are internal in the API (admin key or trusted network): admin only here.
    if session.key.allows(Scope.ADMIN):
        minutes = await state.metrics_service.last_hour()
        traffic = _traffic_charts(minutes)
    return page(
        session,
        "overview.html",
        volume=_volume_charts(labels, rows),
        rows=rows,
        traffic=traffic,
        minutes=minutes,
    )
