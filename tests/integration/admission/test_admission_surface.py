"""The webhook's reach over HTTPS, on a real `affidavit webhook serve` and the real registry:
image volumes and `kubectl debug`'s ephemeral-container subresource are judged, a dry run is
judged and answered like the real request but leaves no ledger row, and /mutate pins a Pod's
covered tags to the digests the evidence lookup resolved (and nothing else; on an update, only
the images it brings in)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from admission_support import Images, WebhookProcess, decision_from_json, review

from affidavit.ledger import Ledger
from affidavit.policy.messages import DRY_RUN_NOTE, admission_message


def _ledger(workdir: Path) -> Ledger:
    return Ledger(f"sqlite:///{workdir / 'ledger.db'}")


def pod_review(
    spec: dict[str, Any],
    *,
    uid: str,
    operation: str = "CREATE",
    sub_resource: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": operation,
        "namespace": "shop",
        "name": "web",
        "userInfo": {"username": "alice", "groups": ["dev"]},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec},
        "dryRun": dry_run,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def containers(*images: str) -> dict[str, Any]:
    return {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}


def mutate(webhook: WebhookProcess, body: dict[str, Any]) -> dict[str, Any]:
    r = webhook.client.post(
        f"{webhook.url}/mutate",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    response: dict[str, Any] = r.json()["response"]
    return response


def patch_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


def pinned(images: Images) -> str:
    """The attested image's tag as the pinning webhook writes it, which /validate then sees."""
    return f"{images.good}@{images.good_digest}"


def test_an_image_volume_is_judged_like_a_container(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    good = pinned(images)  # as the pinning webhook wrote it
    spec = {
        **containers(good),
        "volumes": [{"name": "model", "image": {"reference": images.bare}}],
    }
    response = webhook.validate(pod_review(spec, uid="u-volume")).json()["response"]
    assert response["allowed"] is False
    record = _ledger(workdir).get(response["auditAnnotations"]["decision"])
    assert record is not None
    assert record.decision["images"] == [
        {"ref": good, "digest": images.good_digest},
        {"ref": images.bare, "digest": images.bare_digest},
    ]
    assert {v["image"] for v in record.decision["violations"]} == {images.bare}


def test_an_ephemeral_container_is_judged(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    spec = {
        **containers(pinned(images)),
        "ephemeralContainers": [{"name": "d", "image": images.bare}],
    }
    body = pod_review(spec, uid="u-debug", operation="UPDATE", sub_resource="ephemeralcontainers")
    response = webhook.validate(body).json()["response"]
    assert response["allowed"] is False
    record = _ledger(workdir).get(response["auditAnnotations"]["decision"])
    assert record is not None
    assert {v["image"] for v in record.decision["violations"]} == {images.bare}
    # pods/status cannot change an image and is not on the list: not judged, not recorded
    status = pod_review(spec, uid="u-status", operation="UPDATE", sub_resource="status")
    response = webhook.validate(status).json()["response"]
    assert response == {"uid": "u-status", "allowed": True}


def test_a_dry_run_is_judged_the_same_but_not_recorded(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    real = webhook.validate(pod_review(containers(images.bare), uid="u-real")).json()["response"]
    dry = webhook.validate(pod_review(containers(images.bare), uid="u-dry", dry_run=True)).json()[
        "response"
    ]
    assert (real["allowed"], dry["allowed"]) == (False, False)
    record = _ledger(workdir).get(real["auditAnnotations"]["decision"])
    assert record is not None
    decision = decision_from_json(record.decision)
    dry_id = dry["auditAnnotations"]["decision"]
    assert _ledger(workdir).get(dry_id) is None
    # The same judgement, except that the message does not point to a record that is not there.
    expected = admission_message(decision).replace(decision.id, dry_id).splitlines()[:-1]
    assert dry["status"]["message"].splitlines() == [*expected, DRY_RUN_NOTE]
    # An admitted dry run is admitted the same, and leaves no row either.
    ok = webhook.validate(pod_review(containers(pinned(images)), uid="u-dry-ok", dry_run=True))
    response = ok.json()["response"]
    assert response["allowed"] is True
    assert _ledger(workdir).get(response["auditAnnotations"]["decision"]) is None


def test_a_tag_the_pinning_webhook_did_not_pin_is_refused_until_it_is(
    webhook: WebhookProcess, images: Images, workdir: Path
) -> None:
    """The pinning webhook pins each covered tag a Pod brings in, as far as its lookup goes in
    time. Where it could not (its budget spent in a flood, the namespace's labels unread, a
    mutating webhook after it writing the image back), /validate judged the tag as written and
    admitted it on its evidence; a retag, then a restart or a gated Pod released, ran a digest
    nobody judged. Now that Pod is refused, to be retried (a controller retries by itself);
    pinned, it passes; a template keeps its tag (its Pods are pinned as they are made)."""
    response = webhook.validate(pod_review(containers(images.good), uid="u-unpinned")).json()[
        "response"
    ]
    assert response["allowed"] is False
    record = _ledger(workdir).get(response["auditAnnotations"]["decision"])
    assert record is not None
    (violation,) = record.decision["violations"]
    assert (violation["rule"], violation["image"]) == ("image.pinned", images.good)
    assert violation["found"] == (
        f"tag reference {images.good} as written, not pinned to the digest judged"
        f" ({images.good_digest})"
    )
    assert "retry" in violation["fix"]
    good = pinned(images)
    ok = webhook.validate(pod_review(containers(good), uid="u-pinned-ok")).json()["response"]
    assert ok["allowed"] is True
    template = webhook.validate(review(images.good, uid="u-template")).json()["response"]
    assert template["allowed"] is True


def test_mutate_pins_covered_tags_to_the_resolved_digests(
    webhook: WebhookProcess, images: Images
) -> None:
    host = images.host
    spec = {
        "initContainers": [{"name": "init", "image": images.bare}],
        **containers(
            images.good,
            f"{images.good.rsplit(':', 1)[0]}@{images.good_digest}",  # already pinned
            f"{host}/strict/missing:1",  # does not resolve
            f"{host}/nobody/covers:1",  # no policy: its registry is not contacted
        ),
        "volumes": [{"name": "model", "image": {"reference": images.good}}],
    }
    before = webhook.metric("affidavit_pins_total", result="pinned")
    unresolved = webhook.metric("affidavit_pins_total", result="unresolved")
    response = mutate(webhook, pod_review(spec, uid="u-pin"))
    assert response["allowed"] is True
    assert response["auditAnnotations"] == {"pinned": "3"}
    assert patch_of(response) == [
        {
            "op": "replace",
            "path": "/spec/initContainers/0/image",
            "value": f"{images.bare}@{images.bare_digest}",
        },
        {
            "op": "replace",
            "path": "/spec/containers/0/image",
            "value": f"{images.good}@{images.good_digest}",
        },
        {
            "op": "replace",
            "path": "/spec/volumes/0/image/reference",
            "value": f"{images.good}@{images.good_digest}",
        },
    ]
    assert webhook.metric("affidavit_pins_total", result="pinned") == before + 3
    assert webhook.metric("affidavit_pins_total", result="unresolved") == unresolved + 1
    # The pinned form is judged at the same digest by the validating webhook.
    pinned = webhook.validate(
        pod_review(containers(f"{images.good}@{images.good_digest}"), uid="u-pinned")
    ).json()["response"]
    assert pinned["allowed"] is True


def test_mutate_counts_images_as_the_validating_webhook_does(
    webhook: WebhookProcess, images: Images
) -> None:
    """One image spelled 65 ways (the registry's port with leading zeros) is one image to the
    validating webhook, which judges it; the pinner counted 65, past the cap of 64, and pinned
    nothing, so the Pod ran the tag as written and a retag ran an unjudged digest."""
    host, _, rest = images.good.partition("/")
    address, _, port = host.rpartition(":")
    spellings = [f"{address}:{'0' * i}{port}/{rest}" for i in range(1, 65)]
    spec = {
        **containers(images.good),
        "volumes": [{"name": f"v{i}", "image": {"reference": s}} for i, s in enumerate(spellings)],
    }
    ops = patch_of(mutate(webhook, pod_review(spec, uid="u-spellings")))
    assert len(ops) == 65
    assert ops[0] == {
        "op": "replace",
        "path": "/spec/containers/0/image",
        "value": f"{images.good}@{images.good_digest}",
    }
    assert ops[-1]["value"] == f"{spellings[-1]}@{images.good_digest}"


def test_mutate_counts_only_what_an_update_brings_in(
    webhook: WebhookProcess, images: Images
) -> None:
    """`kubectl debug` on a Pod that already runs more images than the 64 judged per request:
    the validating webhook judges only the debug container's; the pinner counted the whole Pod,
    pinned nothing, and the debug container was refused as unpinned on every retry."""
    many = [f"registry.example/other/tool{i}:1" for i in range(65)]
    old = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": containers(*many),
    }
    spec = {**containers(*many), "ephemeralContainers": [{"name": "dbg", "image": images.good}]}
    body = pod_review(
        spec, uid="u-debug-many", operation="UPDATE", sub_resource="ephemeralcontainers"
    )
    body["request"]["oldObject"] = old
    assert patch_of(mutate(webhook, body)) == [
        {
            "op": "replace",
            "path": "/spec/ephemeralContainers/0/image",
            "value": f"{images.good}@{images.good_digest}",
        }
    ]


def test_mutate_leaves_templates_and_the_images_an_update_keeps_alone(
    webhook: WebhookProcess, images: Images
) -> None:
    update = pod_review(containers(images.good), uid="u-upd", operation="UPDATE")
    update["request"]["oldObject"] = {"kind": "Pod", "spec": containers(images.good)}
    assert mutate(webhook, update) == {"uid": "u-upd", "allowed": True}
    # What an update brings in (a container's new image, kubectl debug's) is pinned.
    swap = pod_review(containers(images.good, images.bare), uid="u-swap", operation="UPDATE")
    swap["request"]["oldObject"] = {"kind": "Pod", "spec": containers(images.good)}
    assert patch_of(mutate(webhook, swap)) == [
        {
            "op": "replace",
            "path": "/spec/containers/1/image",
            "value": f"{images.bare}@{images.bare_digest}",
        }
    ]
    debug = pod_review(
        {**containers(images.good), "ephemeralContainers": [{"name": "d", "image": images.bare}]},
        uid="u-debug",
        operation="UPDATE",
        sub_resource="ephemeralcontainers",
    )
    debug["request"]["oldObject"] = {"kind": "Pod", "spec": containers(images.good)}
    assert [op["path"] for op in patch_of(mutate(webhook, debug))] == [
        "/spec/ephemeralContainers/0/image"
    ]
    body = pod_review(containers(images.good), uid="u-deploy")
    body["request"]["kind"] = {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert mutate(webhook, body) == {"uid": "u-deploy", "allowed": True}
