"""Runs the component checks concurrently, each bounded by a timeout, so a dead component
makes `/health` slower by at most that timeout and never hangs it; adds a warning for each
threshold the recent signals cross.

The overall status is `down` when a component every request needs (PostgreSQL) is down,
`degraded` when any other component is not `ok` or a threshold is crossed, `ok` otherwise.

The endpoint is public, so a burst of callers must not turn into a burst of probes: reports are
kept for `cache_s`, and callers that arrive while a report is being made share it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from engine.health.checks import Check
from engine.health.report import ComponentHealth, HealthReport, Probe, ThresholdWarning
from engine.health.thresholds import Signals, Thresholds, crossed
from schema.states import HealthStatus

SignalSource = Callable[[], Awaitable[Signals]]


class HealthService:
    def __init__(
        self,
        checks: Sequence[Check],
        *,
        timeout_s: float,
        signals: SignalSource | None = None,
        thresholds: Thresholds | None = None,
        cache_s: float = 0.0,
    ) -> None:
        self._checks = list(checks)
        self._timeout_s = timeout_s
        self._signals = signals
        self._thresholds = thresholds or Thresholds()
        self._cache_s = cache_s
        self._last: tuple[float, HealthReport] | None = None
        self._making: asyncio.Future[HealthReport] | None = None

    async def report(self) -> HealthReport:
        """Every component and threshold; reports, never raises."""
        if self._last is not None and time.monotonic() - self._last[0] < self._cache_s:
            return self._last[1]
        if self._making is None:
            self._making = asyncio.ensure_future(self._make())
            self._making.add_done_callback(self._made)
        return await asyncio.shield(self._making)

    async def ready(self) -> HealthReport:
        """Only the components every request needs: whether to send this process traffic."""
        critical = [c for c in self._checks if c.on_failure is HealthStatus.DOWN]
        components = await asyncio.gather(*(self._run(c) for c in critical))
        return HealthReport(_overall(critical, components, []), tuple(components), ())

    def _made(self, future: asyncio.Future[HealthReport]) -> None:
        self._making = None
        if not future.cancelled() and future.exception() is None:
            self._last = (time.monotonic(), future.result())

    async def _make(self) -> HealthReport:
        components, warnings = await asyncio.gather(
            asyncio.gather(*(self._run(c) for c in self._checks)), self._warnings()
        )
        return HealthReport(
            _overall(self._checks, components, warnings), tuple(components), tuple(warnings)
        )

    async def _run(self, check: Check) -> ComponentHealth:
        started = time.perf_counter()
        error: str | None = None
        try:
            probe = await asyncio.wait_for(check.probe(), self._timeout_s)
        except TimeoutError:
            probe, error = Probe(HealthStatus.DOWN), "timeout"
        except Exception as exc:  # noqa: BLE001 - a failed probe is a finding, not an error
            probe, error = Probe(HealthStatus.DOWN), type(exc).__name__
        elapsed_ms = (time.perf_counter() - started) * 1000
        return ComponentHealth(check.name, probe.status, elapsed_ms, probe.detail, error)

    async def _warnings(self) -> list[ThresholdWarning]:
        if self._signals is None:
            return []
        try:
            signals = await asyncio.wait_for(self._signals(), self._timeout_s)
        except Exception:  # noqa: BLE001 - signals missing (Redis down) cross nothing
            return []
        return crossed(signals, self._thresholds)


def _overall(
    checks: Sequence[Check],
    components: Sequence[ComponentHealth],
    warnings: Sequence[ThresholdWarning],
) -> HealthStatus:
    status = HealthStatus.DEGRADED if warnings else HealthStatus.OK
    for check, component in zip(checks, components, strict=True):
        if component.status is HealthStatus.OK:
            continue
        if component.status is HealthStatus.DOWN and check.on_failure is HealthStatus.DOWN:
            return HealthStatus.DOWN
        status = HealthStatus.DEGRADED
    return status
