"""The webhook process judges canonical names: an image no policy matches is recorded and warned
about (or denied with ``--unmatched-images Deny``), the warning names the canonical image, and a
reference that is no reference at all is refused instead of slipping past the matcher."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from admission_support import Images, Tls, WebhookProcess, review, start_webhook

from affidavit.ledger import Ledger
from affidavit.policy.messages import WARNINGS_BUDGET

FIX_HINT = (
    "write it as [HOST[:PORT]/]REPOSITORY[:TAG][@sha256:<64 hex>], e.g. "
    "127.0.0.1:5000/app@sha256:<hex> or nginx:1.27 (Docker Hub)"
)


def unmatched_warning(image: str, name: str, setting: str) -> str:
    return (
        f"{image}: image.unmatched (cluster setting unmatchedImages={setting}): found no "
        "AccountabilityPolicy matches this image; expected every image under an "
        f"AccountabilityPolicy (unmatchedImages: {setting}); fix: add {name} (or a glob that "
        "covers it) to match.images of an AccountabilityPolicy, or run the image under the name "
        f"a policy covers; `affidavit explain {image} --policy FILE` shows what matches"
    )


@pytest.fixture(scope="module")
def deny_webhook(workdir: Path, tls: Tls, images: Images) -> Iterator[WebhookProcess]:
    proc = start_webhook(
        workdir,
        tls.ca.cert_pem,
        tls.cert,
        tls.key,
        args=[
            "--ledger",
            f"sqlite:///{workdir / 'deny-ledger.db'}",
            "--policy-dir",
            str(workdir / "policies"),
            "--unmatched-images",
            "Deny",
        ],
    )
    yield proc
    proc.stop()


def test_an_unmatched_image_is_recorded_and_warned_about(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    port = images.host.rsplit(":", 1)[1]
    written = f"LOCALHOST:{port}/elsewhere/app:1"  # no policy names this registry spelling
    canonical = f"localhost:{port}/elsewhere/app:1"
    response = webhook.validate(review(written, uid="u-unmatched")).json()["response"]
    assert response["allowed"] is True
    assert response["warnings"] == [
        unmatched_warning(canonical, f"localhost:{port}/elsewhere/app", "Warn")
    ]
    record = Ledger(f"sqlite:///{workdir / 'ledger.db'}").get(
        response["auditAnnotations"]["decision"]
    )
    assert record is not None
    assert record.outcome == "warned"
    assert record.decision["images"] == [{"ref": canonical, "digest": None}]


def test_deny_refuses_an_unmatched_image(deny_webhook: WebhookProcess, images: Images) -> None:
    response = deny_webhook.validate(review("nginx", uid="u-deny")).json()["response"]
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert message.splitlines()[1] == "- " + unmatched_warning(
        "docker.io/library/nginx:latest", "docker.io/library/nginx", "Deny"
    )


def test_a_reference_that_is_no_reference_is_refused(
    webhook: WebhookProcess, images: Images
) -> None:
    response = webhook.validate(review(f"{images.host}/Strict/Good:1")).json()["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        f"image reference '{images.host}/Strict/Good:1' has an invalid repository 'Strict/Good' "
        f"(lowercase letters, digits and separators . _ - /), so it cannot be judged; "
        f"fix: {FIX_HINT}"
    )


def test_mutate_skips_a_reference_that_is_no_reference(
    webhook: WebhookProcess, images: Images
) -> None:
    """/mutate pins what it can and leaves an invalid reference to the validating webhook."""
    bad = f"{images.host}/Strict/Good:1"
    spec = {"containers": [{"name": "a", "image": bad}, {"name": "b", "image": images.good}]}
    body = review(images.good, uid="u-mutate")
    body["request"]["kind"] = {"group": "", "version": "v1", "kind": "Pod"}
    body["request"]["resource"] = {"group": "", "version": "v1", "resource": "pods"}
    body["request"]["object"] = {"apiVersion": "v1", "kind": "Pod", "spec": spec}
    r = webhook.client.post(
        f"{webhook.url}/mutate",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    patch = json.loads(base64.b64decode(r.json()["response"]["patch"]))
    assert patch == [
        {
            "op": "replace",
            "path": "/spec/containers/1/image",
            "value": f"{images.good}@{images.good_digest}",
        }
    ]


def test_many_warnings_stay_whole_within_the_apiservers_budget(
    webhook: WebhookProcess, images: Images
) -> None:
    # The kube-apiserver cuts every warning to 256 characters once they pass 4,096 in all: the
    # webhook gives as many whole as fit, then says how many more and where the record is.
    port = images.host.rsplit(":", 1)[1]
    written = [f"localhost:{port}/elsewhere/app{i}:1" for i in range(20)]
    response = webhook.validate(review(*written, uid="u-many")).json()["response"]
    assert response["allowed"] is True
    warnings = response["warnings"]
    assert sum(map(len, warnings)) <= WARNINGS_BUDGET
    *whole, last = warnings
    assert whole == [
        unmatched_warning(image, image.rsplit(":", 1)[0], "Warn") for image in written[: len(whole)]
    ]
    decision = response["auditAnnotations"]["decision"]
    assert last == (
        f"and {20 - len(whole)} more violations: run `affidavit explain --decision {decision}` "
        "for the full record"
    )
