"""A finished transaction summary on disk: each table as Parquet and CSV, a PNG chart of daily
captured volume, and `manifest.json` naming them.

The manifest is written last, so its presence means the outputs are complete; readers (the
reports API) list files from it, never by globbing a directory a job may still be writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from engine.jobs.manifest import CHART, write_manifest
from engine.jobs.partials import Summary
from engine.jobs.ranges import SummaryRange

_SCHEMAS = {
    "daily": pa.schema(
        [
            ("day", pa.date32()),
            ("currency", pa.string()),
            ("status", pa.string()),
            ("method", pa.string()),
            ("count", pa.int64()),
            ("amount", pa.int64()),
            ("captured", pa.int64()),
            ("refunded", pa.int64()),
        ]
    ),
    "refunds": pa.schema(
        [
            ("currency", pa.string()),
            ("captured_count", pa.int64()),
            ("refunded_count", pa.int64()),
            ("captured", pa.int64()),
            ("refunded", pa.int64()),
            ("count_rate", pa.float64()),
            ("amount_rate", pa.float64()),
        ]
    ),
    "declines": pa.schema([("code", pa.string()), ("count", pa.int64()), ("rate", pa.float64())]),
    "top_customers": pa.schema(
        [
            ("currency", pa.string()),
            ("rank", pa.int64()),
            ("customer_id", pa.string()),
            ("volume", pa.int64()),
        ]
    ),
}


def _table(name: str, rows: Sequence[Any]) -> pa.Table:
    records = [{k: str(v) if k == "customer_id" else v for k, v in asdict(r).items()} for r in rows]
    return pa.Table.from_pylist(records, schema=_SCHEMAS[name])


def _chart(summary: Summary, span: SummaryRange, path: Path) -> None:
    # Agg: no display on a cluster node; imported here so only the writer pays for matplotlib.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    volume: dict[str, dict[Any, int]] = {}
    for row in summary.days:
        per_day = volume.setdefault(row.currency, {})
        per_day[row.day] = per_day.get(row.day, 0) + row.captured
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    try:
        for currency, per_day in sorted(volume.items()):
            days = sorted(per_day)
            ax.plot(days, [per_day[d] for d in days], marker=".", label=currency)
        ax.set_title(f"Daily captured volume, {span.first} to {span.last} (UTC)")
        ax.set_ylabel("minor units")
        if volume:
            ax.legend()
        fig.autofmt_xdate()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def write_summary(summary: Summary, span: SummaryRange, out: Path) -> dict[str, Any]:
    """Write every output of `summary` into `out` (created if missing); returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, Sequence[Any]] = {
        "daily": summary.days,
        "refunds": summary.refunds,
        "declines": summary.declines,
        "top_customers": summary.top_customers,
    }
    files: list[str] = []
    for name, rows in tables.items():
        table = _table(name, rows)
        pq.write_table(table, out / f"{name}.parquet")
        pa_csv.write_csv(table, out / f"{name}.csv")
        files += [f"{name}.parquet", f"{name}.csv"]
    _chart(summary, span, out / CHART)
    files.append(CHART)
    manifest = {
        "from": span.first.isoformat(),
        "to": span.last.isoformat(),
        "payments": summary.payments,
        "files": files,
    }
    write_manifest(out, manifest)
    return manifest
