"""The PrometheusRule alerts on metrics the reconciler really exports (names drift silently otherwise)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from reconciler.metrics import ReconcilerMetrics

RULE = Path(__file__).resolve().parents[2] / "manifests" / "components" / "prometheus-rule" / "prometheusrule.yaml"


def test_every_alert_expression_uses_an_exported_metric() -> None:
    rule = yaml.safe_load(RULE.read_text())
    expressions = [alert["expr"] for group in rule["spec"]["groups"] for alert in group["rules"]]
    used = {name for expr in expressions for name in re.findall(r"istio_federation_[a-z_]+", expr)}
    metrics = ReconcilerMetrics()
    exported = {
        metric.name + suffix
        for metric in metrics.registry.collect()
        for suffix in ("", "_total", "_seconds")
    } | set(re.findall(r"^# TYPE (\S+)", generate_latest(metrics.registry).decode(), re.MULTILINE))
    assert used
    assert used <= exported, used - exported
