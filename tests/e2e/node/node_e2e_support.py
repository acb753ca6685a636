"""Helpers for the end-to-end tests on a real node: runnable released images, objects, polling.

On the node, admitted workloads really run, so the released images must be runnable: each is
the node's static ``pause`` binary plus a file naming the revision it was "built" from (so each
release has its own digest), attested by the same pipeline functions the demo uses.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affidavit import envtest
from affidavit.attestations.image import OCI_CONFIG, OCI_LAYER_GZIP
from affidavit.attestations.keys import Signer
from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.attestations.registry import OCI_MANIFEST, ImageReference, RegistryClient
from affidavit.collect import collect_github_review, collect_provenance
from affidavit.demo.github_records import Approval, write_review_records
from affidavit.demo.pipeline import attest_predicate
from affidavit.demo.sample import SampleRepo
from affidavit.envtest import NodeInfo

WEBHOOK = "workloads.affidavit.dev"
API = "affidavit.dev/v1alpha1"

#: ``kubectl(*args, input=None, check=True, timeout=60)`` / ``helm(...)``.
Run = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class RunnableRelease:
    image: str  # the node's registry (as Pods name it)/REPO@sha256:...
    digest: str
    revision: str


@dataclass(frozen=True)
class BuiltImage:
    repository: str  # as Pods name it: 10.88.0.1:5000/affidavit
    digest: str
    public_pem: str  # verifies the image's own attestations

    @property
    def ref(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True)
class NodeReleases:
    public_pem: str
    reviewed: RunnableRelease  # independent approval on the final revision
    late: RunnableRelease  # AI change to auth code pushed after the approval


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """``envtest.wait_for`` with the node's pace: kubectl on a loaded node, polled every 0.5 s."""
    return envtest.wait_for(check, what, timeout, interval=0.5)


def pause_binary(node_bin: Path) -> bytes:
    """The static pause binary, read back from the pause image ``k8s-binaries node`` built."""
    layout = node_bin.parent / "pause-oci"
    index = json.loads((layout / "index.json").read_text())

    def blob(digest: str) -> bytes:
        return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(blob(manifest["layers"][-1]["digest"]))) as tar:
        member = tar.extractfile("pause")
        assert member is not None
        return member.read()


def push_runnable_image(
    client: RegistryClient, repository: str, files: dict[str, bytes], tag: str
) -> str:
    """An image whose entrypoint is ``/pause`` (from ``files``); returns its digest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size = len(files[path])
            info.mode = 0o755 if path == "pause" else 0o644
            tar.addfile(info, io.BytesIO(files[path]))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65532:65532"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    ref = ImageReference.parse(repository)
    layer_digest = client.put_blob(ref, layer)
    config_digest = client.put_blob(ref, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": len(layer)}],
        }
    ).encode()
    digest, _ = client.put_manifest(ref.with_tag(tag), manifest, OCI_MANIFEST)
    return digest


def runnable_release(
    client: RegistryClient,
    node: NodeInfo,
    name: str,
    pause: bytes,
    sample: SampleRepo,
    head: str,
    approvals: list[Approval],
    signer: Signer,
    workdir: Path,
) -> RunnableRelease:
    """Push a runnable image built from ``head`` and attest its AI provenance and review."""
    files = {"pause": pause, "REVISION": head.encode() + b"\n"}
    digest = push_runnable_image(client, f"{node.registry_local}/{name}", files, head[:12])
    pushed = ImageReference.parse(f"{node.registry_local}/{name}@{digest}")
    provenance = collect_provenance(sample.path, sample.base, head)
    attest_predicate(client, pushed, AI_PROVENANCE_V1, provenance.to_wire(), signer)
    records = write_review_records(
        workdir / f"github-{head[:12]}", sample.path, sample.base, head, approvals
    )
    review = collect_github_review(records.pr, records.reviews, records.commits, head=head)
    attest_predicate(client, pushed, CODE_REVIEW_V1, review.to_wire(), signer)
    return RunnableRelease(f"{node.registry}/{name}@{digest}", digest, head)


def policy(name: str, images: list[str], public_pem: str, **require: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AccountabilityPolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": "Enforce",
            "match": {"images": images},
            "signers": {"keys": [{"name": "ci-release-key", "publicKey": public_pem}]},
            "require": require,
        },
    }


def deployment(name: str, namespace: str, image: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": image}],
                },
            },
        },
    }


def review_violation(policy: str, image: str, revision: str, approved: str) -> str:
    """The violation sentence for an image whose critical AI change lacks the approval: Bo
    approved ``approved``, the revision before the AI change was pushed."""
    pr = "https://github.com/acme/payments-api/pull/42"
    return (
        f"{image}: review.critical.independentApprovals (AccountabilityPolicy/{policy}): "
        f"found 0 independent approvals on the final revision of {pr} (not counted: bo "
        f"approved earlier revision {approved[:12]}); expected at least 1 "
        "(AI-involved changes touch tier critical: src/auth/login.py); "
        f"fix: get 1 more independent approval on the final revision of {pr}, then run "
        "`affidavit collect review --github-pr pr.json --github-reviews reviews.json "
        f"--github-commits commits.json --head {revision} --output review.json && "
        f"affidavit attest {image} --predicate review.json "
        "--type https://affidavit.dev/attestations/code-review/v1 --key <key>`"
    )


def denial_text(message: str) -> str:
    """What kubectl prints for a request the webhook refused with ``message``."""
    return f'admission webhook "{WEBHOOK}" denied the request: {message}'


def pods(kubectl: Run, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def running(kubectl: Run, namespace: str, selector: str) -> list[str]:
    """Names of the Pods that are Running, Ready and not terminating."""
    names = []
    for p in pods(kubectl, namespace, selector):
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
        if (
            p["status"].get("phase") == "Running"
            and ready
            and "deletionTimestamp" not in p["metadata"]
        ):
            names.append(p["metadata"]["name"])
    return sorted(names)


def diagnose(node: NodeInfo, tail: int = 60) -> str:
    """What a failure on the node needs to be understood: every Pod described, its containers'
    logs (the current and the previous run: a restart's cause is in the one that died), the
    events in time order, and the tails of the kubelet's and containerd's logs."""
    cp = node.control_plane

    def kubectl(*args: str) -> str:
        proc = subprocess.run(
            [str(cp.kubectl), f"--kubeconfig={cp.kubeconfig}", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return proc.stdout + proc.stderr

    parts = ["$ kubectl get pods -A -o wide", kubectl("get", "pods", "-A", "-o", "wide")]
    parts += ["$ kubectl describe pods -A", kubectl("describe", "pods", "-A")]
    listing = kubectl("get", "pods", "-A", "-o", "json")
    try:
        items = json.loads(listing)["items"]
    except (ValueError, KeyError):
        items = []
    for pod in items:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        for status in pod.get("status", {}).get("containerStatuses", []):
            c = status["name"]
            for previous in ([] if not status.get("restartCount") else ["--previous"]) + [""]:
                args = ["logs", name, "-n", ns, "-c", c, f"--tail={tail}", "--timestamps"]
                args += [previous] if previous else []
                parts += [f"$ kubectl {' '.join(args)}", kubectl(*args)]
    parts += ["$ kubectl get events -A --sort-by=.lastTimestamp",
              kubectl("get", "events", "-A", "--sort-by=.lastTimestamp")]  # fmt: skip
    for component in ("kubelet", "containerd"):
        log = node.workdir / f"{component}.log"
        if log.exists():
            lines = log.read_text(errors="replace").splitlines()[-tail:]
            parts += [f"$ tail -n {tail} {log}", "\n".join(lines)]
    return "\n".join(parts)
