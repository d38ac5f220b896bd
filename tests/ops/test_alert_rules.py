"""The alerting rules parse as Prometheus rule files, carry the seed's thresholds (the ones
/health warns at), and use only metrics paygrid exports. `promtool check rules` runs too when
promtool is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.health.thresholds import Thresholds
from engine.metrics.catalogue import CATALOGUE, Kind

ALERTS = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "alerts.yml"
_METRIC = re.compile(r"\bpaygrid_[a-z_]+\b")


def _rules() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    rules = [r for group in document["groups"] for r in group["rules"]]
    return {r["alert"]: r for r in rules}


def _exported() -> set[str]:
    names = set()
    for spec in CATALOGUE:
        names.add(spec.name)
        if spec.kind is Kind.HISTOGRAM:
            names.update(f"{spec.name}{s}" for s in ("_bucket", "_sum", "_count"))
    return names


def test_every_rule_is_complete_and_balanced() -> None:
    rules = _rules()
    assert len(rules) == 4
    for name, rule in rules.items():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")"), name
        assert expr.count("{") == expr.count("}"), name
        unknown = set(_METRIC.findall(expr)) - _exported()
        assert not unknown, (name, unknown)


def test_rules_carry_the_thresholds_health_warns_at() -> None:
    limits, rules = Thresholds(), _rules()

    def limit_of(alert: str) -> float:
        return float(re.findall(r"(?:>|>=)\s*([0-9.]+)\s*$", rules[alert]["expr"])[0])

    assert limit_of("PaygridSlowResponses") == limits.response_time_ms / 1000
    assert limit_of("PaygridErrorRate") == limits.error_rate
    assert limit_of("PaygridDatabasePoolSaturated") == limits.pool_use
    assert limit_of("PaygridQueueBacklog") == limits.queue_depth


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    subprocess.run([promtool, "check", "rules", str(ALERTS)], check=True, timeout=60)  # noqa: S603
