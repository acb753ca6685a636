"""The shipped alerts fire when they should, and only then, in Prometheus's own rule engine.

``test_admission_metrics_dashboard.py`` proves every alert parses and selects series a real
webhook exports. Whether an alert fires on the failure it names (its expression, its ``for``,
its threshold) and its annotations render takes Prometheus's evaluator: ``tools/alert-eval``
links Prometheus's rule engine, PromQL engine and TSDB (built here with the Go toolchain from
the module proxy; no Prometheus binary can be had). Each scenario starts from a healthy
webhook's series and changes the few a failure changes; every alert of the file is evaluated
each minute, and the test asserts exactly which alerts are firing, and which pending, at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from affidavit.envtest.binaries import cache_root

REPO = Path(__file__).resolve().parents[3]
TOOL = REPO / "tools" / "alert-eval"
RULES = REPO / "charts" / "affidavit" / "alerts" / "affidavit.rules.yaml"

#: A webhook and an operator that are well, as minute-by-minute series (promqltest notation):
#: reviews answered within 5 s, certificates with most of a 100,000 s lifetime left, owner checks
#: answered, no failure counted.
HEALTHY = {
    "affidavit_admission_duration_seconds_count": "0+100x90",
    'affidavit_admission_duration_seconds_bucket{le="5.0"}': "0+100x90",
    "affidavit_serving_certificate_not_before_timestamp_seconds": "0x90",
    "affidavit_serving_certificate_not_after_timestamp_seconds": "100000x90",
    'affidavit_operator_ready{pod="affidavit-0"}': "1x90",
    "affidavit_ledger_write_failures_total": "0x90",
    "affidavit_ledger_buffered_total": "0x90",
    'affidavit_evidence_lookups_total{result="verified"}': "0+50x90",
    'affidavit_evidence_lookups_total{result="unavailable"}': "0x90",
    'affidavit_evidence_lookups_total{result="late"}': "0x90",
    'affidavit_owner_checks_total{result="owners"}': "0+20x90",
    'affidavit_owner_checks_total{result="timeout"}': "0x90",
    "affidavit_unauthenticated_requests_total": "0x90",
    'affidavit_running_workloads{result="fail"}': "0x90",
    'affidavit_running_workloads{result="pass"}': "12x90",
    "affidavit_webhook_configuration_drift": "0x90",
}


@pytest.fixture(scope="module")
def alert_eval() -> Path:
    """The tool, built once per source (cached by the hash of its files)."""
    go = shutil.which("go")
    if go is None:
        message = "the Go toolchain is not installed; tools/alert-eval is built with it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    source = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        source.update((TOOL / name).read_bytes())
    binary = cache_root() / "alert-eval" / source.hexdigest()[:16] / "alert-eval"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        building = binary.with_suffix(f".{os.getpid()}")
        built = subprocess.run(
            [go, "build", "-trimpath", "-o", str(building), "."],
            cwd=TOOL, capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
        assert built.returncode == 0, built.stderr[-4000:]
        building.replace(binary)
    return binary


def evaluate(
    alert_eval: Path, changes: Mapping[str, str | None], minutes: int = 60
) -> dict[str, dict[str, Any]]:
    """Every alert's state after ``minutes`` of the healthy series with ``changes`` (a series
    mapped to None is left out: never scraped)."""
    series = {**HEALTHY, **changes}
    body = {
        "rules": str(RULES),
        "interval": "1m",
        "duration": f"{minutes}m",
        "series": [{"series": s, "values": v} for s, v in series.items() if v is not None],
    }
    done = subprocess.run(
        [str(alert_eval)], input=json.dumps(body), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    alerts: dict[str, dict[str, Any]] = json.loads(done.stdout)
    for name, result in alerts.items():
        for alert in result["alerts"]:
            for key, text in alert["annotations"].items():
                assert "error expanding template" not in text, f"{name} {key}: {text}"
                assert "<no value>" not in text, f"{name} {key}: {text}"
    return alerts


def states(alerts: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The alerts that are not inactive, by state."""
    return {name: r["state"] for name, r in alerts.items() if r["state"] != "inactive"}


#: Each alert, the failure it names (the series that change) and how long the failure lasts.
FAILURES: list[tuple[str, dict[str, str | None], int]] = [
    ("AffidavitNotScraped",
     {"affidavit_admission_duration_seconds_count": None}, 30),
    # 15,000 s left of a 115,000 s lifetime at 0: under a fifth all along
    ("AffidavitCertificateNotRenewed",
     {"affidavit_serving_certificate_not_before_timestamp_seconds": "-100000x90",
      "affidavit_serving_certificate_not_after_timestamp_seconds": "15000x90"}, 30),
    ("AffidavitOperatorNotReady", {'affidavit_operator_ready{pod="affidavit-0"}': "0x90"}, 30),
    ("AffidavitLedgerWriteFailures", {"affidavit_ledger_write_failures_total": "0+1x90"}, 5),
    ("AffidavitLedgerBuffering", {"affidavit_ledger_buffered_total": "0+3x90"}, 30),
    ("AffidavitRegistryUnavailable",
     {'affidavit_evidence_lookups_total{result="unavailable"}': "0+2x90"}, 30),
    ("AffidavitEvidenceLate", {'affidavit_evidence_lookups_total{result="late"}': "0+2x90"}, 30),
    # 3 of every 100 reviews past 5 s
    ("AffidavitSlowAdmissions",
     {'affidavit_admission_duration_seconds_bucket{le="5.0"}': "0+97x90"}, 30),
    # 4 of every 24 owner checks gave up on the API server
    ("AffidavitOwnerChecksGivingUp",
     {'affidavit_owner_checks_total{result="timeout"}': "0+4x90"}, 40),
    ("AffidavitUnauthenticatedCallers",
     {"affidavit_unauthenticated_requests_total": "0+1x90"}, 5),
    ("AffidavitRunningWithoutEvidence",
     {'affidavit_running_workloads{result="fail"}': "2x90"}, 45),
    ("AffidavitWebhookConfigurationDrift", {"affidavit_webhook_configuration_drift": "1x90"}, 10),
]  # fmt: skip


def test_a_healthy_webhook_raises_no_alert(alert_eval: Path) -> None:
    alerts = evaluate(alert_eval, {})
    assert set(alerts) == {alert for alert, _, _ in FAILURES}  # each alert has its failure here
    assert states(alerts) == {}


@pytest.mark.parametrize(("alert", "changes", "minutes"), FAILURES)
def test_each_failure_fires_its_own_alert_and_no_other(
    alert_eval: Path, alert: str, changes: dict[str, str | None], minutes: int
) -> None:
    alerts = evaluate(alert_eval, changes, minutes)
    assert states(alerts) == {alert: "firing"}
    (fired,) = alerts[alert]["alerts"]
    assert fired["labels"]["severity"] in ("critical", "warning")
    assert fired["annotations"]["summary"] and fired["annotations"]["description"]


def test_an_alert_waits_its_for_and_a_threshold_holds(alert_eval: Path) -> None:
    """Running without evidence for 20 minutes is pending (its ``for`` is 30 m); owner checks
    that give up once in a hundred stay under the 5% threshold."""
    failing = {'affidavit_running_workloads{result="fail"}': "2x90"}
    assert states(evaluate(alert_eval, failing, 20)) == {
        "AffidavitRunningWithoutEvidence": "pending"
    }
    rare = {
        'affidavit_owner_checks_total{result="owners"}': "0+99x90",
        'affidavit_owner_checks_total{result="timeout"}': "0+1x90",
    }
    assert states(evaluate(alert_eval, rare, 40)) == {}


def test_the_descriptions_render_the_values_they_name(alert_eval: Path) -> None:
    operator = evaluate(alert_eval, {'affidavit_operator_ready{pod="affidavit-0"}': "0x90"}, 30)
    (alert,) = operator["AffidavitOperatorNotReady"]["alerts"]
    assert (
        "For 15 minutes the operator in affidavit-0 has not been ready"
        in (alert["annotations"]["description"])
    )
    owners = evaluate(alert_eval, {'affidavit_owner_checks_total{result="timeout"}': "0+4x90"}, 40)
    (alert,) = owners["AffidavitOwnerChecksGivingUp"]["alerts"]
    assert alert["annotations"]["description"].startswith("16.67% of the checks")
