"""The Grafana dashboard ships with the chart: behind metrics.grafanaDashboard.enabled, a
ConfigMap carrying the label Grafana's dashboard sidecar selects (grafana_dashboard: "1" by
default, or the sidecar's own label), in the release's namespace or the sidecar's, holding the
dashboard file byte for byte; nothing is rendered when it is off."""

from __future__ import annotations

import json

from helm_support import CHART, Render


def test_the_dashboard_configmap(render: Render) -> None:
    assert not [d for d in render() if d["metadata"]["name"] == "affidavit-dashboard"]
    docs = render("--set", "metrics.grafanaDashboard.enabled=true")
    [configmap] = [d for d in docs if d["metadata"]["name"] == "affidavit-dashboard"]
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["namespace"] == "affidavit-system"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = (CHART / "dashboards" / "affidavit.json").read_text()
    assert configmap["data"] == {"affidavit.json": shipped.rstrip("\n")}
    assert json.loads(configmap["data"]["affidavit.json"])["uid"] == "affidavit-admission"


def test_the_sidecars_own_label_namespace_and_folder(render: Render) -> None:
    docs = render(
        "--set", "metrics.grafanaDashboard.enabled=true",
        "--set", "metrics.grafanaDashboard.label=dashboards.example.com/grafana",
        "--set-string", "metrics.grafanaDashboard.labelValue=true",
        "--set", "metrics.grafanaDashboard.namespace=monitoring",
        "--set-string", "metrics.grafanaDashboard.annotations.grafana_folder=Affidavit",
    )  # fmt: skip
    [configmap] = [d for d in docs if d["metadata"]["name"] == "affidavit-dashboard"]
    metadata = configmap["metadata"]
    assert metadata["namespace"] == "monitoring"
    assert metadata["labels"]["dashboards.example.com/grafana"] == "true"
    assert "grafana_dashboard" not in metadata["labels"]
    assert metadata["annotations"] == {"grafana_folder": "Affidavit"}
