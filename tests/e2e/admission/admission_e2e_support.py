"""Helpers for the admission end-to-end tests: objects, polling, and decisions from the ledger.

The tests drive the real path (kubectl -> kube-apiserver -> webhook -> ledger -> operator), so
they need to wait for asynchronous steps (the operator republishing the policy index, the webhook
reloading it, the operator emitting Events) with bounded polls, and to read back the decision the
webhook recorded to compare kubectl's output with the exact admission message.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from affidavit.attestations.reference import ImageReference
from affidavit.attestations.registry import RegistryClient
from affidavit.demo.pipeline import Release
from affidavit.demo.stack import ClusterStack, StackSettings
from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.ledger import Ledger
from affidavit.names import INDEX_CONFIGMAP
from affidavit.policy import Decision, admission_message

API = "affidavit.dev/v1alpha1"
WEBHOOK = "workloads.affidavit.dev"
REPO = "admission-e2e/payments-api"
OWNER_LABEL = "affidavit.dev/owner"
_DECISION_ID = re.compile(r"\(decision ([0-9a-f-]{36})\)")
CLUSTER = "e2e-admission"
HOME_REGION = "us-east-1"


@dataclass(frozen=True)
class Releases:
    registry_host: str
    public_pem: str
    reviewed: Release  # conforming: independent approval on the final revision
    late: Release  # AI change to src/auth/login.py pushed after the approval


def tag(releases: Releases, name: str, digest: str) -> str:
    """Point tag ``name`` of the suite's repository at ``digest``; returns the tag reference."""
    ref = ImageReference.parse(f"{releases.registry_host}/{REPO}:{name}")
    with RegistryClient(insecure_hosts={releases.registry_host}) as client:
        manifest = client.get_manifest(ref.with_digest(digest))
        client.put_manifest(ref, manifest.data, manifest.media_type)
    return str(ref)


@contextmanager
def running_stack(
    control_plane: ControlPlaneInfo,
    registry_host: str,
    workdir: Path,
    name: str,
    *,
    webhook_kubeconfig: Path | None = None,
    webhook_args: Sequence[str] = (),
    operator_args: Sequence[str] = (),
    webhook_env: Mapping[str, str] | None = None,
) -> Iterator[ClusterStack]:
    """A ClusterStack in namespace ``name`` with configuration ``name``; removed afterwards.
    The webhook runs as the cluster admin unless ``webhook_kubeconfig`` names an identity,
    with the stack's options and ``webhook_args`` (the operator's: ``operator_args``)."""
    stack = ClusterStack(
        control_plane,
        workdir,
        StackSettings(CLUSTER, HOME_REGION, registry_host),
        namespace=name,
        webhook_configuration=name,
        webhook_kubeconfig=webhook_kubeconfig,
        # A loaded CI machine's apiserver may show an owner later than the default 2 s: a Pod
        # of an admitted Deployment would then be judged alone (a later flag wins).
        webhook_args=("--owner-check-seconds", "3.5", *webhook_args),
        operator_args=operator_args,
        webhook_env=webhook_env,
    )
    try:
        with stack:
            yield stack
            # Removed before the webhook stops: failurePolicy Fail must not outlive it.
            stack.remove_webhook_configurations()
    finally:
        stack.remove_webhook_configurations(check=False)


@contextmanager
def keyless_stack(
    control_plane: ControlPlaneInfo,
    registry_host: str,
    workdir: Path,
    name: str,
    *,
    namespace: str,
    root: tuple[str, Path],
    policy: dict[str, Any],
    webhook_env: Mapping[str, str] | None = None,
) -> Iterator[ClusterStack]:
    """``running_stack`` with namespace ``namespace`` for workloads, a private Sigstore's
    trusted root in ConfigMap ``root[0]`` (from the file ``root[1]``) and ``policy`` in force;
    the policy and the namespace are removed afterwards."""
    with running_stack(
        control_plane, registry_host, workdir, name, webhook_env=webhook_env
    ) as running:
        running.kubectl("create", "namespace", namespace)
        running.kubectl(
            "-n", name, "create", "configmap", root[0], f"--from-file=trusted_root.json={root[1]}"
        )
        apply_and_sync(running, policy)
        try:
            yield running
        finally:
            running.kubectl(
                "delete", "accountabilitypolicy", policy["metadata"]["name"], "--ignore-not-found"
            )
            running.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_now(**delta: float) -> str:
    return rfc3339(datetime.now(UTC) + timedelta(**delta))


# --- policy objects --------------------------------------------------------------------------


def policy(name: str, registry_host: str, public_pem: str, **spec: Any) -> dict[str, Any]:
    """An AccountabilityPolicy for this suite's images: AI-touched critical code needs one
    independent approval on the final revision, and provenance must be present."""
    base: dict[str, Any] = {
        "mode": "Enforce",
        "match": {"images": [f"{registry_host}/{REPO}*"]},
        "signers": {"keys": [{"name": "ci-release-key", "publicKey": public_pem}]},
        "require": {
            "provenance": {"required": True},
            "tiers": {"critical": {"independentApprovals": 1}},
            "consistentRevision": True,
        },
    }
    return {
        "apiVersion": API,
        "kind": "AccountabilityPolicy",
        "metadata": {"name": name},
        "spec": base | spec,
    }


def keyless_policy(
    name: str, images: str, signer: dict[str, Any], **require: Any
) -> dict[str, Any]:
    """An Enforce AccountabilityPolicy for the ``images`` glob that trusts one keyless
    ``signer`` and requires provenance (and ``require``'s other rules)."""
    return {
        "apiVersion": API,
        "kind": "AccountabilityPolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": "Enforce",
            "match": {"images": [images]},
            "signers": {"keyless": [signer]},
            "require": {"provenance": {"required": True}, **require},
        },
    }


def region_policy(name: str, regions: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "RegionPolicy",
        "metadata": {"name": name},
        "spec": {"regions": regions, **spec},
    }


def exception(name: str, namespace: str, images: list[str], expires_at: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AccountabilityException",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "images": images,
            "reason": "login outage hotfix",
            "incidentId": "INC-2041",
            "owner": "olga",
            "approvers": ["victor"],
            "expiresAt": expires_at,
        },
    }


# --- workloads -------------------------------------------------------------------------------


def _pod_spec(image: str) -> dict[str, Any]:
    return {"containers": [{"name": "api", "image": image}]}


def deployment(name: str, namespace: str, image: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec(image)},
        },
    }


def pod(name: str, namespace: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": _pod_spec(image),
    }


def cronjob(name: str, namespace: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {
                "spec": {"template": {"spec": {**_pod_spec(image), "restartPolicy": "Never"}}}
            },
        },
    }


# --- the cluster's side ----------------------------------------------------------------------


def published_index(stack: ClusterStack) -> tuple[dict[str, Any], str] | None:
    """The policy index the operator published, and its digest (None before the first one)."""
    proc = stack.kubectl(
        "get", "configmap", INDEX_CONFIGMAP, "-n", stack.namespace, "-o", "json", check=False
    )
    if proc.returncode != 0:
        return None
    cm = json.loads(proc.stdout)
    digest = (cm["metadata"].get("annotations") or {}).get("affidavit.dev/index-digest", "")
    return json.loads(cm["data"]["index.json"]), digest


def generation_of(stack: ClusterStack, kind: str, name: str, namespace: str | None = None) -> int:
    ns = ["-n", namespace] if namespace else []
    out = stack.kubectl("get", kind, name, *ns, "-o", "jsonpath={.metadata.generation}").stdout
    return int(out)


def webhook_loaded(stack: ClusterStack, holds: Callable[[dict[str, Any]], bool]) -> str:
    """Wait until the published index satisfies ``holds`` and the webhook has loaded it."""
    found = wait_for(
        lambda: (p := published_index(stack)) is not None and holds(p[0]) and p,
        "the operator to publish the expected policy index",
    )
    digest: str = found[1]
    assert stack.webhook is not None
    webhook = stack.webhook
    wait_for(
        lambda: f"policy index {digest} loaded" in webhook.log_path.read_text(errors="replace"),
        f"the webhook to load policy index {digest}",
    )
    return digest


def index_has(kind_key: str, name: str, generation: int, namespace: str | None = None) -> Any:
    """A predicate on the index JSON: the object is there, at this generation."""

    def holds(index: dict[str, Any]) -> bool:
        return any(
            item["name"] == name
            and item.get("generation") == generation
            and item.get("namespace") == namespace
            for item in index.get(kind_key, [])
        )

    return holds


def apply_and_sync(stack: ClusterStack, obj: dict[str, Any]) -> str:
    """Apply a policy object and wait until the webhook judges with it; returns the digest."""
    stack.apply(obj)
    meta = obj["metadata"]
    key = {
        "AccountabilityPolicy": "policies",
        "RegionPolicy": "regionPolicies",
        "AccountabilityException": "exceptions",
    }[obj["kind"]]
    generation = generation_of(stack, obj["kind"].lower(), meta["name"], meta.get("namespace"))
    return webhook_loaded(stack, index_has(key, meta["name"], generation, meta.get("namespace")))


def delete_and_sync(stack: ClusterStack, kind: str, name: str, namespace: str | None = None) -> str:
    """Delete a policy object and wait until the webhook judges without it."""
    ns = ["-n", namespace] if namespace else []
    stack.kubectl("delete", kind, name, *ns, "--ignore-not-found")
    key = {"accountabilitypolicy": "policies", "regionpolicy": "regionPolicies"}.get(
        kind, "exceptions"
    )
    return webhook_loaded(
        stack, lambda index: all(item["name"] != name for item in index.get(key, []))
    )


# --- decisions -------------------------------------------------------------------------------


def decision_from_record(data: dict[str, Any]) -> Decision:
    """Rebuild the Decision the webhook recorded from its JSON in the ledger."""
    return Decision.from_dict(data)


def decision_id_in(text: str) -> str:
    m = _DECISION_ID.search(text)
    assert m is not None, f"no decision id in:\n{text}"
    return m.group(1)


def recorded(stack: ClusterStack, decision_id: str) -> Decision:
    """The decision with this id, once the webhook's ledger holds it."""
    ledger = Ledger(stack.ledger_url)
    try:
        record = wait_for(lambda: ledger.get(decision_id), f"decision {decision_id} in the ledger")
    finally:
        ledger.close()
    return decision_from_record(record.decision)


def latest(stack: ClusterStack, namespace: str, kind: str, name: str) -> Decision:
    """The most recent decision about one workload (waits until there is one)."""
    ledger = Ledger(stack.ledger_url)

    def find() -> Any:
        rows = [r for r in ledger.query(namespace=namespace) if (r.kind, r.name) == (kind, name)]
        return rows[-1] if rows else None

    try:
        record = wait_for(find, f"a decision about {kind}/{name} in {namespace}")
    finally:
        ledger.close()
    return decision_from_record(record.decision)


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


def refused(stack: ClusterStack, proc: subprocess.CompletedProcess[str]) -> Decision:
    """kubectl failed, printing the admission message of the denial the ledger recorded."""
    assert proc.returncode == 1, f"expected a refusal; kubectl said:\n{proc.stdout}{proc.stderr}"
    decision = recorded(stack, decision_id_in(proc.stderr))
    assert decision.outcome == "denied"
    assert denial_text(admission_message(decision)) in proc.stderr, proc.stderr
    return decision
