"""Files generated from the chart are current: the chart README's values table (from
values.schema.json, every key described) and operator/manifests/affidavit.yaml (`helm template`
with the defaults, for people without Helm). A chart change without regenerating them fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from helm_support import CHART

REPO = CHART.parents[1]


def test_chart_readme_is_generated_from_the_schema() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chart-readme"), "--check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = (CHART / "README.md").read_text().split("## Values\n", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) > 60
    undescribed = [r.split("|")[1].strip() for r in rows if r.endswith("|  |")]
    assert undescribed == []


def test_plain_manifests_are_the_chart_rendered(helm: Path) -> None:
    proc = subprocess.run(
        [str(REPO / "scripts" / "render-manifests"), "--check"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = [
        d for d in yaml.safe_load_all((REPO / "operator/manifests/affidavit.yaml").read_text()) if d
    ]
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "Deployment", "Service",
            "ValidatingWebhookConfiguration"} <= kinds  # fmt: skip
    assert "Pod" not in kinds  # no `helm test` Pod
