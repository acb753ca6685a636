"""The webhook end to end over HTTPS: a real `affidavit webhook serve` process, the real registry
with real signed attestations, the SQLite ledger. Covers allow/deny/warn/audit, tag resolution,
digest pinning, malformed and oversized reviews, a hanging or refusing registry under the time
budget (fail closed, fail open: the registry's own unavailability is named, nothing more), and
the evidence cache counters."""

from __future__ import annotations

import json
from pathlib import Path

from admission_support import Images, WebhookProcess, decision_from_json, review

from affidavit.admission.policy_source import load_policy_files
from affidavit.ledger import Ledger
from affidavit.policy.messages import admission_message


def _ledger(workdir: Path) -> Ledger:
    return Ledger(f"sqlite:///{workdir / 'ledger.db'}")


def test_attested_image_is_admitted_and_recorded_with_its_digest(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    r = webhook.validate(review(images.good, uid="u-good"))
    assert r.status_code == 200
    response = r.json()["response"]
    assert response["uid"] == "u-good"
    assert response["allowed"] is True
    decision_id = response["auditAnnotations"]["decision"]
    record = _ledger(workdir).get(decision_id)
    assert record is not None
    assert record.outcome == "allowed"
    assert record.decision["images"] == [{"ref": images.good, "digest": images.good_digest}]
    assert record.decision["cluster"] == "prod-1"
    assert record.decision["region"] == "eu-west-1"
    assert _ledger(workdir).verify_chain().ok


def test_unattested_image_is_denied_with_the_policy_message(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    response = webhook.validate(review(images.bare, uid="u-bare")).json()["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    record = _ledger(workdir).get(response["auditAnnotations"]["decision"])
    assert record is not None and record.outcome == "denied"
    decision = decision_from_json(record.decision)
    assert response["status"]["message"] == admission_message(decision)
    assert any(v.image == images.bare for v in decision.violations)


def test_warn_mode_admits_with_warnings(webhook: WebhookProcess, images: Images) -> None:
    response = webhook.validate(review(f"{images.host}/warn/bare:1")).json()["response"]
    assert response["allowed"] is True
    assert response["warnings"]
    assert all(w.startswith(f"{images.host}/warn/bare:1: ") for w in response["warnings"])


def test_audit_mode_admits_with_audit_annotations(webhook: WebhookProcess, images: Images) -> None:
    response = webhook.validate(review(f"{images.host}/audit/bare:1")).json()["response"]
    assert response["allowed"] is True
    assert "warnings" not in response
    assert int(response["auditAnnotations"]["violations"]) >= 1
    assert response["auditAnnotations"]["decision"]


def test_digest_required_denies_a_tag(webhook: WebhookProcess, images: Images) -> None:
    response = webhook.validate(review(f"{images.host}/pinned/good:1")).json()["response"]
    assert response["allowed"] is False
    assert "image.digest" in response["status"]["message"]


def test_review_without_uid_gets_400(webhook: WebhookProcess) -> None:
    body = review("x.example/a:1")
    del body["request"]["uid"]
    r = webhook.validate(body)
    assert r.status_code == 400
    assert r.json() == {"error": "malformed AdmissionReview: request.uid is missing"}
    r = webhook.validate(b"{garbage")
    assert r.status_code == 400
    assert r.json()["error"].startswith("malformed AdmissionReview: the body is not JSON (")


def test_review_without_spec_is_denied_naming_the_field(webhook: WebhookProcess) -> None:
    body = review("x.example/a:1", uid="u-nospec")
    del body["request"]["object"]["spec"]
    r = webhook.validate(body)
    assert r.status_code == 200
    assert r.json()["response"] == {
        "uid": "u-nospec",
        "allowed": False,
        "status": {
            "code": 400,
            "message": "malformed AdmissionReview: request.object.spec is missing",
            "reason": "Forbidden",
        },
    }


def test_oversized_review_is_refused(webhook: WebhookProcess, images: Images) -> None:
    body = review(images.good, uid="u-big")
    body["request"]["object"]["metadata"]["annotations"] = {"pad": "x" * (4 * 1024 * 1024)}
    data = json.dumps(body).encode()
    r = webhook.validate(data)
    assert r.status_code == 200
    assert r.json()["response"] == {
        "uid": "u-big",
        "allowed": False,
        "status": {
            "code": 413,
            "message": f"AdmissionReview of {len(data)} bytes exceeds the webhook's limit of "
            "3145728 bytes (3 MiB); the object is too large to judge",
            "reason": "Forbidden",
        },
    }


def test_hanging_registry_is_unavailable_and_fails_closed(
    webhook: WebhookProcess, hanging_registry: str, workdir: Path
) -> None:
    image = f"{hanging_registry}/strict/app:1"
    response = webhook.validate(review(image, uid="u-hang")).json()["response"]
    assert response["allowed"] is False
    record = _ledger(workdir).get(response["auditAnnotations"]["decision"])
    assert record is not None
    assert [(v["rule"], v["found"]) for v in record.decision["violations"]] == [
        ("evidence.unavailable", f"registry {hanging_registry} is unreachable")
    ]
    assert response["status"]["message"] == admission_message(decision_from_json(record.decision))


def test_hanging_registry_fails_open_when_the_policy_says_so(
    webhook: WebhookProcess, hanging_registry: str, workdir: Path
) -> None:
    image = f"{hanging_registry}/lenient/app:1"
    response = webhook.validate(review(image, uid="u-open")).json()["response"]
    assert response["allowed"] is True
    assert response["warnings"] == [
        f"{image}: evidence.unavailable (AccountabilityPolicy/lenient): found registry "
        f"{hanging_registry} is unreachable; expected verified attestations for the image; fix: "
        "admitted because the registry itself is unavailable and the policy fails open "
        "(failurePolicy: Ignore); redeploy once it is back"
    ]
    record = _ledger(workdir).get(response["auditAnnotations"]["decision"])
    assert record is not None and record.outcome == "warned"


def test_unreachable_registry_fails_closed_and_is_counted(
    webhook: WebhookProcess, closed_port: str
) -> None:
    before = webhook.metric("affidavit_registry_errors_total")
    image = f"{closed_port}/strict/app:1"
    response = webhook.validate(review(image)).json()["response"]
    assert response["allowed"] is False
    assert f"found registry {closed_port} is unreachable; expected" in response["status"]["message"]
    assert "refused" not in response["status"]["message"]  # details go to the log only
    assert webhook.metric("affidavit_registry_errors_total") == before + 1


def test_evidence_cache_hits_misses_and_negative_hits(
    webhook: WebhookProcess, images: Images
) -> None:
    image = f"{images.host}/strict/good@{images.good_digest}"
    fresh = f"{images.host}/lenient/bare:1"

    def counts() -> tuple[float, float, float]:
        return (
            webhook.metric("affidavit_evidence_cache_total", result="hit"),
            webhook.metric("affidavit_evidence_cache_total", result="miss"),
            webhook.metric("affidavit_evidence_cache_total", result="negative_hit"),
        )

    h0, m0, n0 = counts()
    webhook.validate(review(fresh))
    assert counts() == (h0, m0 + 1, n0)
    webhook.validate(review(fresh))
    assert counts() == (h0, m0 + 1, n0 + 1)
    webhook.validate(review(image))  # the same digest was verified by an earlier test or now
    webhook.validate(review(image))
    h2, _m2, _n2 = counts()
    assert h2 >= h0 + 1
    assert webhook.metric("affidavit_decisions_total", namespace="shop", outcome="allowed") >= 1


def test_health_readiness_and_non_workloads(webhook: WebhookProcess, workdir: Path) -> None:
    assert webhook.client.get(f"{webhook.url}/healthz").text == "ok\n"
    ready = webhook.client.get(f"{webhook.url}/readyz")
    assert ready.status_code == 200
    # /readyz names the index it loaded, so a rollout can wait for a given policy change.
    loaded = load_policy_files(workdir / "policies")
    assert ready.text == f"ok: policy index {loaded.digest}\n"
    body = review("x.example/a:1", kind="ConfigMap", uid="u-cm")
    assert webhook.validate(body).json()["response"] == {"uid": "u-cm", "allowed": True}
