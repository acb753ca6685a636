"""The end-to-end demo: from a team's git history to an admission decision an auditor can replay.

It runs the whole Affidavit path on this machine with real components only: a git repository
with human and AI-assisted commits, Debian's OCI registry, a signing key, a real Kubernetes
control plane (etcd, kube-apiserver, kube-controller-manager), the operator and the admission
webhook. Two images of the same service are released; the one whose AI-assisted change to
authentication code was reviewed is admitted, the one with an AI change pushed after the
approval is refused, and the demo shows why, from the rejection to the ledger.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.pseudonyms import PseudonymKey, reveal
from affidavit.attestations.registry import RegistryClient
from affidavit.attestations.verify import verify_image
from affidavit.audit.render import render_markdown
from affidavit.audit.report import ai_touched_from_evidence, report_from_ledger
from affidavit.audit.trace import render_trace, trace_image
from affidavit.demo.github_records import Approval
from affidavit.demo.pipeline import Release, release
from affidavit.demo.sample import ANA, BO, make_sample_repo
from affidavit.demo.services import LocalRegistry
from affidavit.demo.stack import ClusterStack, StackSettings
from affidavit.envtest import ControlPlane
from affidavit.errors import UsageError
from affidavit.ledger import Ledger
from affidavit.names import API_VERSION, INDEX_CONFIGMAP
from affidavit.policy import PolicyIndex
from affidavit.policy.decision import Decision
from affidavit.policy.explain import explain_decision

Echo = Callable[[str], None]
APP_NAMESPACE = "payments"
#: The people of the sample's history, as the key holder's list would name them (``--people``).
PEOPLE = (f"{ANA[0]} <{ANA[1]}>", f"{BO[0]} <{BO[1]}>", "ana", "bo", "mia", "Mia Release")
OWNER_LABEL = "affidavit.dev/owner"


def _policy(registry_host: str, public_pem: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "AccountabilityPolicy",
        "metadata": {"name": "payments-baseline"},
        "spec": {
            "mode": "Enforce",
            "match": {"images": [f"{registry_host}/acme/*"]},
            "signers": {"keys": [{"name": "ci-release-key", "publicKey": public_pem}]},
            "require": {
                "provenance": {"required": True},
                "tiers": {"critical": {"independentApprovals": 1}},
                "consistentRevision": True,
                "requireDigest": True,
                "ownerLabel": OWNER_LABEL,
            },
            "jurisdictions": ["soc2"],
        },
    }


def _region_policy(registry_host: str) -> dict[str, Any]:
    """The EU regional operator's policy: the eu preset (evidence kept in the EU, among others)
    and where the demo's registry stores data (on this machine, taken to be in eu-west-1)."""
    located = [{"registry": registry_host, "location": "eu-west-1"}]
    return {
        "apiVersion": API_VERSION,
        "kind": "RegionPolicy",
        "metadata": {"name": "eu"},
        "spec": {
            "regions": ["eu-*"],
            "jurisdictions": ["eu"],
            "evidence": {"registryLocations": located},
        },
    }


def _deployment(name: str, image: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": APP_NAMESPACE,
            "labels": {OWNER_LABEL: "team-payments"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels | {OWNER_LABEL: "team-payments"}},
                "spec": {"containers": [{"name": "api", "image": image}]},
            },
        },
    }


def _step(echo: Echo, title: str) -> None:
    echo("")
    echo(f"== {title}")


def _deploy(stack: ClusterStack, echo: Echo, name: str, image: str) -> bool:
    echo(f"$ kubectl apply -f deployment/{name}.yaml   # image {image}")
    proc = stack.apply(_deployment(name, image), check=False)
    for line in (proc.stdout + proc.stderr).strip().splitlines():
        echo(f"  {line}")
    return proc.returncode == 0


def run_demo(echo: Echo, workdir: Path | None = None, *, region: str = "eu-west-1") -> int:
    """Run the demo; returns a process exit code (0 when every step behaved as intended)."""
    own_dir = workdir is None
    used = workdir is not None and workdir.exists()
    if used and workdir is not None and (not workdir.is_dir() or any(workdir.iterdir())):
        raise UsageError(
            f"--workdir {workdir} is not a new or empty directory",
            hint="the demo makes its repository, keys and servers' files there: name a new"
            " directory (or omit --workdir for a temporary one)",
        )
    base = workdir or Path(tempfile.mkdtemp(prefix="affidavit-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        return _run(echo, base, region)
    finally:
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)


def _run(echo: Echo, base: Path, region: str) -> int:
    _step(
        echo, "1. A team's history: human and AI-assisted commits (some touch authentication code)"
    )
    sample = make_sample_repo(base / "payments-api")
    echo(f"  repository {sample.path}")
    echo(f"  PR head when Bo approved:   {sample.reviewed}")
    echo(f"  AI change pushed afterwards: {sample.pushed_after_review} (src/auth/login.py)")

    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    key_path = base / "ci-release.key"
    key_path.write_bytes(private_pem)
    signer = load_signer(key_path)
    trusted = [KeySigner(name="ci-release-key", public_key_pem=public_pem.decode())]

    with (
        LocalRegistry(base / "registry") as registry,
        RegistryClient(insecure_hosts={registry.host}) as client,
    ):
        _step(echo, f"2. Pipelines build, collect and attest to the registry at {registry.host}")
        approvals = [Approval(login="bo", name=BO[0], commit=sample.reviewed)]
        # the eu preset names people only by pseudonyms: the pipeline collects with its key
        pseudonym_key = PseudonymKey(secrets.token_hex(32).encode("ascii"))
        made = [
            release(
                client,
                registry.host,
                "acme/payments-api",
                sample,
                head,
                approvals,
                signer,
                base,
                pseudonym_key=pseudonym_key,
            )
            for head in (sample.reviewed, sample.pushed_after_review)
        ]
        good, late = made
        for rel in (good, late):
            echo(f"  attested ai-provenance/v1 and code-review/v1 for {rel.image}")
        echo(
            f"  people named by pseudonyms of key {pseudonym_key.key_id} (collect "
            "--pseudonym-key): Ana is"
        )
        echo(f"  {pseudonym_key.of(ANA[1])}, and nothing in the evidence says so")

        def shown(text: str) -> str:
            return reveal(text, pseudonym_key, PEOPLE)

        _step(echo, "3. The four questions, answered from the verified attestations")
        echo("  (as the key holder sees them: $ affidavit trace IMAGE --pseudonym-key KEY --people")
        echo("  people.txt; without the key every person is a psn:... pseudonym)")
        evidences = [verify_image(client, rel.image, trusted) for rel in (good, late)]
        for evidence in evidences:
            echo("")
            for line in shown(render_trace(trace_image(evidence))).splitlines():
                echo(f"  {line}")

        _step(echo, f"4. A real control plane (region {region}) with the operator and the webhook")
        with (
            ControlPlane(base / "control-plane") as cp,
            ClusterStack(
                cp, base / "stack", StackSettings("demo-cluster", region, registry.host)
            ) as stack,
        ):
            echo(f"  kube-apiserver {cp.server}; webhook {stack.webhook_url}")
            stack.kubectl("create", "namespace", APP_NAMESPACE)
            stack.apply(_policy(registry.host, public_pem.decode()))
            stack.apply(_region_policy(registry.host))
            echo("  applied AccountabilityPolicy/payments-baseline (soc2; critical tier needs an")
            echo("  independent approval of AI-touched changes) and RegionPolicy/eu (eu preset;")
            echo(f"  evidence kept in the EU: the registry {registry.host} is placed in eu-west-1)")
            _wait_for_policies(stack)
            touched = ai_touched_from_evidence(evidences)
            return _deployments(echo, stack, good, late, touched, shown)


def _wait_for_policies(stack: ClusterStack) -> None:
    assert stack.operator is not None

    def ready() -> bool:
        out = stack.kubectl(
            "get", "accountabilitypolicies.affidavit.dev,regionpolicies.affidavit.dev",
            "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
        ).stdout.split()  # fmt: skip
        return out == ["True", "True"]

    stack.operator.wait_until(ready, "both policies were compiled (Ready=True)")
    # The webhook follows the published index; give it the moment the watch needs.
    stack.operator.wait_until(lambda: _webhook_sees(stack), "the webhook loaded both policies")


def _webhook_sees(stack: ClusterStack) -> bool:
    """The webhook has loaded the index the operator published with both policies in it."""
    data = stack.kubectl(
        "get", "configmap", INDEX_CONFIGMAP, "-n", "affidavit-system",
        "-o", "jsonpath={.data.index\\.json}",
    ).stdout  # fmt: skip
    if "payments-baseline" not in data or "eu" not in data:
        return False
    return stack.webhook_index_digest() == PolicyIndex.from_json(data).digest


def _deployments(
    echo: Echo,
    stack: ClusterStack,
    good: Release,
    late: Release,
    ai_touched: dict[str, bool],
    shown: Callable[[str], str],
) -> int:
    _step(echo, "5. Release managers deploy")
    admitted = _deploy(stack, echo, "payments-api", good.image)
    refused = not _deploy(stack, echo, "payments-api-canary", late.image)

    ledger = Ledger(stack.ledger_url)
    denied = ledger.query(outcome="denied", namespace=APP_NAMESPACE)
    if denied:
        decision = Decision.from_dict(denied[-1].decision)
        _step(
            echo,
            f"6. Why? $ affidavit explain --decision {decision.id} --pseudonym-key KEY "
            "--people people.txt",
        )
        for line in shown(explain_decision(decision)).splitlines():
            echo(f"  {line}")

    _step(echo, "7. Audit: every decision, hash-chained ($ affidavit decisions list)")
    for record in ledger.query(namespace=APP_NAMESPACE):
        echo(f"  #{record.seq} {record.outcome:<8} {record.kind}/{record.name} {record.hash[:16]}")
    chain = ledger.verify_chain()
    echo(f"  chain: {chain.checked} decisions checked, {'intact' if chain.ok else 'BROKEN'}")
    _step(echo, "8. The auditor's coverage report ($ affidavit audit report --format markdown)")
    for line in render_markdown(report_from_ledger(ledger, ai_touched=ai_touched)).splitlines():
        echo(f"  {line}")

    ok = admitted and refused and chain.ok
    _step(echo, "Result")
    echo(f"  reviewed release admitted: {admitted}; unreviewed AI change refused: {refused}")
    return 0 if ok else 1
