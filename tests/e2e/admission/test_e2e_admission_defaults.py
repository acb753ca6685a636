"""What a policy means when it does not say, decided by a real kube-apiserver (issue 7).

- A policy with no ``failurePolicy`` counts as Fail: another policy's ``Ignore`` on the same
  image does not make an unreachable registry fail open (item 7).
- A policy with no ``provenance:`` section still requires provenance: an image without any
  attestation is refused (item 13).
- Of two review attestations, the newer by its signed ``createdAt`` counts whatever order the
  registry lists them in: a later "changes requested" refuses an image whose earlier review
  approved it (item 15).
- With ``--policy-dir``, a policy file with an unknown field leaves the last good policies in
  force and ``/readyz`` answers 503 naming the object, file and field (item 20).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_e2e_support import (
    API,
    apply_and_sync,
    delete_and_sync,
    deployment,
    latest,
    refused,
    running_stack,
)

from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.predicates import CODE_REVIEW_V1
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.collect import collect_github_review
from affidavit.demo.github_records import Approval, write_review_records
from affidavit.demo.pipeline import attest_predicate, build_image, release
from affidavit.demo.sample import BO, make_sample_repo
from affidavit.demo.services import LocalRegistry
from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo, free_port, wait_for

SYSTEM = "affidavit-e2e-defaults"
NS = "adm-defaults"
PREFIX = "admission-e2e/defaults"


@dataclass(frozen=True)
class Images:
    registry_host: str
    public_pem: str
    bare: str  # no attestation at all
    approved: str  # provenance + one review: Bo approved the final revision
    withdrawn: str  # same, plus a newer review in which Bo requested changes
    down: str  # on a registry that is not running


@pytest.fixture(scope="module")
def images(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Images:
    work = tmp_path_factory.mktemp("admission-defaults")
    sample = make_sample_repo(work / "payments-api")
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    (work / "ci.key").write_bytes(private_pem)
    signer = load_signer(work / "ci.key")
    host = registry.host
    approvals = [Approval(login="bo", name=BO[0], commit=sample.reviewed)]
    with RegistryClient(insecure_hosts={host}) as client:
        bare = build_image(client, host, f"{PREFIX}-bare", sample.reviewed)
        approved = release(client, host, f"{PREFIX}-review-ok", sample, sample.reviewed,
                           approvals, signer, work / "ok")  # fmt: skip
        withdrawn = release(client, host, f"{PREFIX}-review-withdrawn", sample, sample.reviewed,
                            [], signer, work / "withdrawn", with_review=False)  # fmt: skip
        ref = ImageReference.parse(withdrawn.image)
        # The approval is attached first and the withdrawal after it: the order a registry
        # lists them in must not matter, the signed createdAt decides.
        for created, review in (
            ("2026-11-04T09:05:00Z", _review(sample, approvals, work / "r1", withdrawn=False)),
            ("2026-11-05T10:00:00Z", _review(sample, approvals, work / "r2", withdrawn=True)),
        ):
            attest_predicate(client, ref, CODE_REVIEW_V1, review | {"createdAt": created}, signer)
    digest = "sha256:" + "0" * 64
    return Images(
        registry_host=host,
        public_pem=public_pem.decode(),
        bare=str(bare),
        approved=approved.image,
        withdrawn=withdrawn.image,
        down=f"127.0.0.1:{free_port()}/{PREFIX}-down@{digest}",
    )


def _review(sample: Any, approvals: list[Approval], where: Path, *, withdrawn: bool) -> Any:
    records = write_review_records(where, sample.path, sample.base, sample.reviewed, approvals)
    if withdrawn:  # Bo looked again the next day and requested changes
        reviews = json.loads(records.reviews.read_text())
        reviews.append(
            reviews[0]
            | {"id": 9100, "state": "CHANGES_REQUESTED", "submitted_at": "2026-11-05T09:30:00Z"}
        )
        records.reviews.write_text(json.dumps(reviews))
    cr = collect_github_review(records.pr, records.reviews, records.commits, head=sample.reviewed)
    return cr.to_wire()


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-defaults-stack")
    with running_stack(control_plane, images.registry_host, work, SYSTEM) as running:
        running.kubectl("create", "namespace", NS)
        try:
            yield running
        finally:
            running.kubectl("delete", "accountabilitypolicy", "-l", "e2e=defaults")
            running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")


def policy(name: str, images: list[str], public_pem: str, **require: Any) -> dict[str, Any]:
    """A policy that writes only what the test gives it: no provenance section by default."""
    return {
        "apiVersion": API,
        "kind": "AccountabilityPolicy",
        "metadata": {"name": name, "labels": {"e2e": "defaults"}},
        "spec": {
            "match": {"images": images},
            "signers": {"keys": [{"name": "ci", "publicKey": public_pem}]},
            "require": require,
        },
    }


def test_a_silent_policy_keeps_an_unreachable_registry_fail_closed(
    stack: ClusterStack, images: Images
) -> None:
    down = [images.down.split("/", 1)[0] + "/*"]
    lenient = policy("def-lenient", down, images.public_pem, failurePolicy="Ignore",
                     provenance={"required": False})  # fmt: skip
    apply_and_sync(stack, lenient)
    apply_and_sync(stack, policy("def-strict", down, images.public_pem))
    d = refused(stack, stack.apply(deployment("down", NS, images.down), check=False))
    assert [(v.rule, v.policy) for v in d.violations] == [
        ("evidence.unavailable", "AccountabilityPolicy/def-strict")
    ]
    delete_and_sync(stack, "accountabilitypolicy", "def-strict")
    admitted = stack.apply(deployment("down", NS, images.down))
    assert admitted.stdout.strip() == "deployment.apps/down created"
    delete_and_sync(stack, "accountabilitypolicy", "def-lenient")


def test_a_policy_without_provenance_section_refuses_an_unattested_image(
    stack: ClusterStack, images: Images
) -> None:
    bare_repo = images.bare.split("@", 1)[0]
    apply_and_sync(stack, policy("def-bare", [f"{bare_repo}*"], images.public_pem))
    try:
        d = refused(stack, stack.apply(deployment("bare", NS, images.bare), check=False))
        assert [(v.rule, v.policy) for v in d.violations] == [
            ("provenance.present", "AccountabilityPolicy/def-bare")
        ]
    finally:
        delete_and_sync(stack, "accountabilitypolicy", "def-bare")


def test_the_newer_review_counts_whatever_the_registry_order(
    stack: ClusterStack, images: Images
) -> None:
    globs = [f"{images.registry_host}/{PREFIX}-review-*"]
    critical = {"critical": {"independentApprovals": 1}}
    apply_and_sync(stack, policy("def-review", globs, images.public_pem, tiers=critical))
    try:
        ok = stack.apply(deployment("approved", NS, images.approved))
        assert ok.stdout.strip() == "deployment.apps/approved created"
        assert latest(stack, NS, "Deployment", "approved").outcome == "allowed"
        d = refused(stack, stack.apply(deployment("withdrawn", NS, images.withdrawn), check=False))
        assert [(v.rule, v.policy) for v in d.violations] == [
            ("review.critical.independentApprovals", "AccountabilityPolicy/def-review")
        ]
        assert d.violations[0].found.startswith("0 independent approvals on the final revision")
    finally:
        delete_and_sync(stack, "accountabilitypolicy", "def-review")


def _readyz(stack: ClusterStack) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(stack.cert_dir / "ca.crt"))
    url = f"https://127.0.0.1:{stack.webhook_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_policy_dir_with_an_unknown_field_keeps_the_last_index_and_is_not_ready(
    stack: ClusterStack, images: Images, tmp_path: Path
) -> None:
    bare_repo = images.bare.split("@", 1)[0]
    files = tmp_path / "policies"
    files.mkdir()
    good = policy("def-files", [f"{bare_repo}*"], images.public_pem)
    (files / "policy.yaml").write_text(yaml.safe_dump(good))
    stack.start_webhook(policy_dir=files)
    try:
        refused(stack, stack.apply(deployment("files-1", NS, images.bare), check=False))
        typo = json.loads(json.dumps(good))
        typo["spec"]["require"] = {"ownerLabels": "affidavit.dev/owner"}
        (files / "policy.yaml").write_text(yaml.safe_dump(typo))
        _, body = wait_for(
            lambda: (r := _readyz(stack))[0] == 503 and r, "/readyz to report the broken file"
        )
        assert body == (
            "not ready: invalid policy objects: AccountabilityPolicy/def-files in "
            f"{files / 'policy.yaml'}: spec.require.ownerLabels: unknown field\n"
        )
        # the last good index (def-files requiring provenance) is still in force
        d = refused(stack, stack.apply(deployment("files-2", NS, images.bare), check=False))
        assert [(v.rule, v.policy) for v in d.violations] == [
            ("provenance.present", "AccountabilityPolicy/def-files")
        ]
        (files / "policy.yaml").write_text(yaml.safe_dump(good))
        wait_for(lambda: _readyz(stack)[0] == 200, "/readyz to recover once the file is fixed")
    finally:
        stack.start_webhook()
