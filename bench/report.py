"""Results as Markdown, in the README's style: a title, a list of facts (date, machine,
durations, settings), then a table. Numbers are formatted here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from bench.load import Summary
from bench.stack import machine


def facts(more: Mapping[str, object]) -> dict[str, object]:
    """The facts every table starts with (date, machine), then `more`."""
    return {"date": datetime.now(UTC).date().isoformat(), "machine": machine(), **more}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(
    title: str,
    listed: Mapping[str, object],
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
) -> str:
    lines = [f"### {title}", ""]
    lines += [f"- {key}: {value}" for key, value in listed.items()]
    return "\n".join([*lines, "", table(header, rows)])


def rate(value: float) -> str:
    return f"{value:,.0f}"


def spread(summary: Summary) -> str:
    """req/s of the slowest and fastest repeat."""
    return f"{summary.min_rps:,.0f}-{summary.max_rps:,.0f}"


def ratio(value: float) -> str:
    return f"{value:.2f}"


def latency_cells(summary: Summary) -> list[str]:
    """req/s median, min-max, p50 ms, p99 ms, errors."""
    p50, p99 = summary.percentiles(50, 99)
    return [
        rate(summary.median_rps),
        spread(summary),
        f"{p50:.1f}",
        f"{p99:.1f}",
        str(summary.errors),
    ]
