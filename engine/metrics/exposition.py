"""The Prometheus text exposition format (version 0.0.4) of the cluster's series.

Series arrive as store fields (name and label values joined by `SEP`); the catalogue names their
labels and gives each family its HELP and TYPE. A series no catalogue entry claims (left in
Redis by another release) is skipped rather than exported without a type.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from engine.metrics.catalogue import CATALOGUE, Kind, MetricSpec
from engine.metrics.recorder import SEP

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_SUFFIXES = {"_bucket": 0, "_sum": 1, "_count": 2}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() else repr(value)


def _families(spec: MetricSpec) -> dict[str, tuple[str, ...]]:
    """The series names of `spec`, each with its label names."""
    if spec.kind is Kind.HISTOGRAM:
        return {
            f"{spec.name}_bucket": (*spec.labels, "le"),
            f"{spec.name}_sum": spec.labels,
            f"{spec.name}_count": spec.labels,
        }
    return {spec.name: spec.labels}


def _sort_key(name: str, values: tuple[str, ...], spec: MetricSpec) -> tuple[object, ...]:
    if spec.kind is not Kind.HISTOGRAM:
        return (values,)
    suffix = name[len(spec.name) :]
    if suffix == "_bucket":
        return (values[:-1], 0, float(values[-1]))
    return (values, _SUFFIXES[suffix], 0.0)


def render(series: Mapping[str, float], catalogue: Iterable[MetricSpec] = CATALOGUE) -> str:
    """Every series of `series` under its family's HELP and TYPE."""
    by_name: dict[str, list[tuple[str, tuple[str, ...], float]]] = {}
    for key, value in series.items():
        name, *parts = key.split(SEP)
        by_name.setdefault(name, []).append((name, tuple(parts), value))
    lines: list[str] = []
    for spec in catalogue:
        families = _families(spec)
        rows = [
            row
            for name, labels in families.items()
            for row in by_name.get(name, [])
            if len(row[1]) == len(labels)
        ]
        lines.append(f"# HELP {spec.name} {spec.help}")
        lines.append(f"# TYPE {spec.name} {spec.kind}")
        for name, values, value in sorted(rows, key=lambda r: _sort_key(r[0], r[1], spec)):
            pairs = ",".join(
                f'{label}="{_escape(v)}"' for label, v in zip(families[name], values, strict=True)
            )
            lines.append(
                f"{name}{{{pairs}}} {_number(value)}" if pairs else f"{name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"
