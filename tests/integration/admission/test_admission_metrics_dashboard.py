"""Metrics a platform engineer can alert on, the chart's alerting rules and Grafana dashboard.

A real webhook judges real reviews (a denial for missing evidence, an admission, a warning), its
metrics port is scraped as Prometheus would, and: the labelled series are there (outcome and
namespace; rule, policy and namespace of each violation; how the lookups ended), namespaces past
the label limit count as ``_other`` — and every metric the dashboard queries, with every label it
groups by, is exported. Every alert of ``charts/affidavit/alerts`` parses with a PromQL parser
(promql-parser, a port of Prometheus's own), and every series it selects is exported by the
webhook or the operator's re-check, with the labels it matches on and groups by, and a value
its equality matchers can meet.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import promql_parser
import pytest
import yaml
from admission_support import Images, Tls, free_port, review, start_webhook
from prometheus_client.parser import text_string_to_metric_families

from affidavit.admission.metrics import Metrics
from affidavit.operator.readiness import Readiness, render_metrics
from affidavit.operator.recheck import Rechecker
from affidavit.operator.webhook_owner import Drift

CHART = Path(__file__).resolve().parents[3] / "charts" / "affidavit"
DASHBOARD = CHART / "dashboards"
ALERTS = CHART / "alerts" / "affidavit.rules.yaml"
#: Labels Prometheus adds to every series of a ServiceMonitor's target (not the metric's own).
TARGET_LABELS = frozenset({"instance", "job", "pod", "service", "container", "endpoint"})
METRIC = re.compile(r"\baffidavit_[a-z_]+\b")
BY = re.compile(r"\bby \(([^)]*)\)\s*\(\s*(?:rate|increase)\((affidavit_[a-z_]+)")


def _families(text: str) -> dict[str, list[dict[str, str]]]:
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return samples


def _scrape(port: int) -> dict[str, list[dict[str, str]]]:
    """Sample name -> the label sets of its samples, from the plain metrics port."""
    return _families(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)


def _value(port: int, name: str, **labels: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and dict(sample.labels) == labels:
                return float(sample.value)
    return 0.0


@pytest.fixture(scope="module")
def scraped(
    tmp_path_factory: pytest.TempPathFactory, tls: Tls, images: Images, workdir: Path
) -> dict[str, list[dict[str, str]]]:
    """A real webhook's samples after a denial, an admission and a warning, scraped as
    Prometheus would; the labelled series are checked on the way."""
    tmp_path = tmp_path_factory.mktemp("metrics")
    port = free_port()
    hook = start_webhook(tmp_path, tls.ca.cert_pem, tls.cert, tls.key, args=[
        "--ledger", f"sqlite:///{tmp_path / 'ledger.db'}", "--policy-dir",
        str(workdir / "policies"), "--registry-allowed-host", images.host,
        "--metrics-port", str(port),
    ])  # fmt: skip
    try:
        denied = hook.validate(review(images.bare, uid="u-denied", namespace="shop"))
        assert denied.json()["response"]["allowed"] is False
        allowed = hook.validate(review(images.good, uid="u-allowed", namespace="billing"))
        assert allowed.json()["response"]["allowed"] is True
        warned = hook.validate(review(f"{images.host}/warn/bare:1", uid="u-warn", namespace="shop"))
        assert warned.json()["response"]["allowed"] is True

        assert _value(port, "affidavit_decisions_total", outcome="denied", namespace="shop") == 1
        assert (
            _value(port, "affidavit_decisions_total", outcome="allowed", namespace="billing") == 1
        )
        assert _value(port, "affidavit_decisions_total", outcome="warned", namespace="shop") == 1
        samples = _scrape(port)
        violations = samples["affidavit_violations_total"]
        assert {"rule": "provenance.present", "policy": "AccountabilityPolicy/strict",
                "namespace": "shop", "outcome": "denied"} in violations  # fmt: skip
        assert {"rule": "provenance.present", "policy": "AccountabilityPolicy/warn",
                "namespace": "shop", "outcome": "warned"} in violations  # fmt: skip
        assert _value(port, "affidavit_evidence_lookups_total", result="evidence") >= 2
        assert {s["result"] for s in samples["affidavit_evidence_lookups_total"]} == {
            "evidence", "missing", "unavailable", "late"}  # fmt: skip
        return samples
    finally:
        hook.stop()


def test_labelled_metrics_and_the_dashboard_queries(
    scraped: dict[str, list[dict[str, str]]],
) -> None:
    samples = scraped
    for path in sorted(DASHBOARD.glob("*.json")):
        exprs = [t["expr"] for p in json.loads(path.read_text())["panels"]
                 for t in p["targets"]]  # fmt: skip
        queried = {name for expr in exprs for name in METRIC.findall(expr)}
        assert len(queried) >= 10
        assert queried <= samples.keys(), queried - samples.keys()
        for expr in exprs:
            for labels, name in BY.findall(expr):
                for label in (x.strip() for x in labels.split(",")):
                    if label != "le":
                        assert any(label in s for s in samples[name]), (expr, label)


def _selectors(node: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(n: promql_parser.Expr) -> None:
        if isinstance(n, promql_parser.VectorSelector):
            found.append(n)

    promql_parser.walk(node, visit)
    return found


def _check_alert(expr: str, samples: dict[str, list[dict[str, str]]]) -> int:
    """Every selector of ``expr`` names an exported series, its matchers labels that series
    has (an equality matcher a value it takes), and every ``by`` label is on what it groups;
    returns how many selectors there were."""
    tree = promql_parser.parse(expr)
    selectors = _selectors(tree)

    def series(selector: promql_parser.VectorSelector) -> list[dict[str, str]]:
        assert selector.name is not None and selector.name in samples, (expr, selector.name)
        return samples[selector.name]

    for selector in selectors:
        for m in selector.matchers.matchers:
            assert any(m.name in s for s in series(selector)), (expr, selector.name, m.name)
            if str(m.op) == "MatchOp.Equal":
                values = {s.get(m.name) for s in series(selector)}
                assert m.value in values, (expr, m.name, m.value)
        series(selector)  # a selector without matchers names an exported series too

    def grouped(n: promql_parser.Expr) -> None:
        if isinstance(n, promql_parser.AggregateExpr) and n.modifier is not None:
            for label in set(n.modifier.labels) - TARGET_LABELS:
                for selector in _selectors(n.expr):
                    assert any(label in s for s in series(selector)), (expr, label)

    promql_parser.walk(tree, grouped)
    return len(selectors)


def test_every_alert_parses_and_selects_what_is_exported(
    scraped: dict[str, list[dict[str, str]]],
) -> None:
    # the operator's re-check gauge, from a real Rechecker's registry (nothing else is used)
    # the operator's /metrics: its readiness gauge and the re-check's, from a real Readiness
    # and Rechecker (nothing else of them is used)
    rechecker = Rechecker(api=cast(Any, None), judge=cast(Any, None), index=lambda: None)
    operator = (
        render_metrics(Readiness(max_age=timedelta(minutes=10)))
        + rechecker.render()
        + Drift().render()
    )
    samples = {**scraped, **_families(operator.decode())}
    (group,) = yaml.safe_load(ALERTS.read_text())["groups"]
    rules = group["rules"]
    assert len({r["alert"] for r in rules}) == len(rules) >= 8
    selected = 0
    for rule in rules:
        assert rule["alert"].startswith("Affidavit")
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"].endswith(".")
        assert "Fix: " in rule["annotations"]["description"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])
        selected += _check_alert(rule["expr"], samples)
    assert selected >= len(rules)


def test_the_alert_check_catches_a_misnamed_series_or_label(
    scraped: dict[str, list[dict[str, str]]],
) -> None:
    """The check above fails where Prometheus would silently find nothing."""
    for wrong in (
        "sum(increase(affidavit_ledger_write_failure_total[5m])) > 0",
        'sum(increase(affidavit_evidence_lookups_total{result="unreachable"}[10m])) > 0',
        'sum(increase(affidavit_decisions_total{verdict="denied"}[10m])) > 0',
        "sum by (registry) (increase(affidavit_registry_errors_total[10m])) > 0",
        "max by (pod) (affidavit_operator_readiness) == 0",
    ):
        with pytest.raises(AssertionError):
            _check_alert(wrong, scraped)
    with pytest.raises(ValueError, match="parenthesis"):
        _check_alert("sum(increase(affidavit_registry_errors_total[10m]) > 0", scraped)


def test_namespaces_past_the_label_limit_count_together() -> None:
    metrics = Metrics(namespace_limit=2)
    for namespace in ("a", "b", "c", "d", "a", None):
        metrics.decided("allowed", namespace)
    text = metrics.render().decode()
    series = {
        (dict(s.labels)["namespace"], s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "affidavit_decisions_total"
    }
    assert series == {("a", 2.0), ("b", 1.0), ("_other", 2.0), ("_none", 1.0)}
