"""The metrics interface the engine records through, and the in-process registry behind it.

Recording is on the hot path, so it is a dict update (a counter), or a bisect and three list
updates (a histogram), on this process's registry; nothing is formatted, locked or sent. The
publisher (`engine/metrics/publisher.py`) takes the registry's deltas every few seconds.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from engine.metrics.catalogue import MetricSpec

Labels = tuple[str, ...]

# Separates a series' name and its label values in a Redis field: a byte no label value holds.
SEP = "\x1f"
_MAX_LABEL = 120


class Metrics(Protocol):
    """What engine code records through."""

    def inc(self, spec: MetricSpec, labels: Labels, value: float = 1.0) -> None: ...

    def observe(self, spec: MetricSpec, labels: Labels, value: float) -> None: ...

    def set(self, spec: MetricSpec, labels: Labels, value: float) -> None: ...


class NoMetrics:
    """Records nothing: for processes and tests that publish no metrics."""

    def inc(self, spec: MetricSpec, labels: Labels, value: float = 1.0) -> None:
        pass

    def observe(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        pass

    def set(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        pass


NO_METRICS = NoMetrics()


def series(name: str, values: Labels) -> str:
    """The field naming one series: its name and label values (cleaned, bounded in length)."""
    return SEP.join((name, *(v.replace(SEP, "_")[:_MAX_LABEL] for v in values)))


def bound(value: float) -> str:
    """A bucket's upper bound as Prometheus writes it."""
    return "+Inf" if math.isinf(value) else repr(float(value))


@dataclass
class Sample:
    """What a registry recorded since it was last taken: counter deltas by series (histograms
    as their cumulative bucket, sum and count series), and gauges' current values."""

    counters: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)

    def merge(self, newer: Sample) -> None:
        for key, delta in newer.counters.items():
            self.counters[key] = self.counters.get(key, 0.0) + delta
        self.gauges = newer.gauges


class Registry:
    """One process's metrics. Not thread-safe: record from the event loop's thread."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, Labels], float] = {}
        # Per histogram series: a count per bucket (the last one +Inf), then the sum and count.
        self._histograms: dict[tuple[str, Labels], list[float]] = {}
        self._specs: dict[str, MetricSpec] = {}
        self._gauges: dict[tuple[str, Labels], float] = {}
        self._collectors: list[Callable[[Registry], None]] = []

    def inc(self, spec: MetricSpec, labels: Labels, value: float = 1.0) -> None:
        key = (spec.name, labels)
        self._counters[key] = self._counters.get(key, 0.0) + value

    def observe(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        key = (spec.name, labels)
        counts = self._histograms.get(key)
        if counts is None:
            self._specs[spec.name] = spec
            counts = self._histograms[key] = [0.0] * (len(spec.buckets) + 3)
        counts[bisect_left(spec.buckets, value)] += 1
        counts[-2] += value
        counts[-1] += 1

    def set(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        self._gauges[(spec.name, labels)] = value

    def collect(self, collector: Callable[[Registry], None]) -> None:
        """Run `collector` (which sets gauges) each time the registry is taken."""
        self._collectors.append(collector)

    def take(self) -> Sample:
        """Everything recorded since the last take, and the gauges now."""
        for collector in self._collectors:
            collector(self)
        sample = Sample()
        for (name, labels), value in self._counters.items():
            sample.counters[series(name, labels)] = value
        for (name, labels), counts in self._histograms.items():
            self._render_histogram(sample, self._specs[name], labels, counts)
        sample.gauges = {series(n, labels): v for (n, labels), v in self._gauges.items()}
        self._counters = {}
        self._histograms = {}
        return sample

    @staticmethod
    def _render_histogram(
        sample: Sample, spec: MetricSpec, labels: Labels, counts: list[float]
    ) -> None:
        cumulative = 0.0
        for upper, count in zip((*spec.buckets, math.inf), counts, strict=False):
            cumulative += count
            sample.counters[series(f"{spec.name}_bucket", (*labels, bound(upper)))] = cumulative
        sample.counters[series(f"{spec.name}_sum", labels)] = counts[-2]
        sample.counters[series(f"{spec.name}_count", labels)] = counts[-1]
