"""The alerting rules ship with the chart: behind metrics.prometheusRule.enabled, a
PrometheusRule whose spec is alerts/affidavit.rules.yaml as it is (the same file a plain
Prometheus loads with rule_files; its alert templates such as ``{{ $value }}`` pass through
Helm untouched), labelled for the Prometheus's ruleSelector and placed where its
ruleNamespaceSelector looks; nothing is rendered when it is off. The ServiceMonitor keeps the
metrics' own labels (honorLabels), on which the rules and the dashboard group by namespace.
What the rules select is checked against a real webhook's /metrics in
tests/integration/admission/test_admission_metrics_dashboard.py."""

from __future__ import annotations

import yaml
from helm_support import CHART, Render

RULES = CHART / "alerts" / "affidavit.rules.yaml"


def test_the_prometheus_rule_is_the_rules_file(render: Render) -> None:
    assert not [d for d in render() if d["kind"] == "PrometheusRule"]
    docs = render("--set", "metrics.prometheusRule.enabled=true",
                  "--set-string", "metrics.prometheusRule.labels.release=prometheus")  # fmt: skip
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == "affidavit"
    assert rule["metadata"]["namespace"] == "affidavit-system"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    descriptions = [r["annotations"]["description"] for r in rule["spec"]["groups"][0]["rules"]]
    assert any("{{ $value | humanize }}" in d for d in descriptions)


def test_the_rules_namespace_can_be_the_prometheus_one(render: Render) -> None:
    docs = render("--set", "metrics.prometheusRule.enabled=true",
                  "--set", "metrics.prometheusRule.namespace=monitoring")  # fmt: skip
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["metadata"]["namespace"] == "monitoring"


def test_the_service_monitor_keeps_the_metrics_namespace_label(render: Render) -> None:
    docs = render("--set", "metrics.serviceMonitor.enabled=true")
    [monitor] = [d for d in docs if d["kind"] == "ServiceMonitor"]
    endpoints = monitor["spec"]["endpoints"]
    assert len(endpoints) == 2  # the webhook's metrics and the operator's
    assert [e.get("honorLabels") for e in endpoints] == [True, True]
