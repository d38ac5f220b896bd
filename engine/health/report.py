"""What a health check finds: per component and overall, with the thresholds crossed.

Nothing here names a host, port, user or secret: a component reports its status, how long it
took to answer, a few counts, and at most the type of the error that stopped it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schema.states import HealthStatus

Detail = Mapping[str, int | float | str | None]


@dataclass(frozen=True, slots=True)
class Probe:
    """What one component's probe found (its latency is measured around it)."""

    status: HealthStatus = HealthStatus.OK
    detail: Detail = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    name: str
    status: HealthStatus
    latency_ms: float
    detail: Detail
    # The exception type or "timeout" when the probe failed; never its message, which may
    # name a host.
    error: str | None = None

    def public(self) -> dict[str, object]:
        answer: dict[str, object] = {
            "status": str(self.status),
            "latency_ms": round(self.latency_ms, 2),
            **self.detail,
        }
        if self.error is not None:
            answer["error"] = self.error
        return answer


@dataclass(frozen=True, slots=True)
class ThresholdWarning:
    """A threshold of the seed crossed: `value` beyond `limit`."""

    name: str
    value: float
    limit: float
    message: str

    def public(self) -> dict[str, object]:
        return {
            "threshold": self.name,
            "value": round(self.value, 4),
            "limit": self.limit,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: HealthStatus
    components: tuple[ComponentHealth, ...]
    warnings: tuple[ThresholdWarning, ...]

    def public(self) -> dict[str, object]:
        return {
            "status": str(self.status),
            "components": {c.name: c.public() for c in self.components},
            "warnings": [w.public() for w in self.warnings],
        }

    def component(self, name: str) -> ComponentHealth:
        return next(c for c in self.components if c.name == name)
