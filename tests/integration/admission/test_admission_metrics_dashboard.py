"""Metrics a platform engineer can alert on, and the chart's Grafana dashboard built on them.

A real webhook judges real reviews (a denial for missing evidence, an admission, a warning), its
metrics port is scraped as Prometheus would, and: the labelled series are there (outcome and
namespace; rule, policy and namespace of each violation; how the lookups ended), namespaces past
the label limit count as ``_other`` — and every metric the dashboard queries, with every label it
groups by, is exported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from admission_support import Images, Tls, free_port, review, start_webhook
from prometheus_client.parser import text_string_to_metric_families

from affidavit.admission.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "charts" / "affidavit" / "dashboards"
METRIC = re.compile(r"\baffidavit_[a-z_]+\b")
BY = re.compile(r"\bby \(([^)]*)\)\s*\(\s*(?:rate|increase)\((affidavit_[a-z_]+)")


def _scrape(port: int) -> dict[str, list[dict[str, str]]]:
    """Sample name -> the label sets of its samples, from the plain metrics port."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return samples


def _value(port: int, name: str, **labels: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and dict(sample.labels) == labels:
                return float(sample.value)
    return 0.0


def test_labelled_metrics_and_the_dashboard_queries(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path
) -> None:
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
    finally:
        hook.stop()


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
