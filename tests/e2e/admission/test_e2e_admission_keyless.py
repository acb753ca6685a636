"""Keyless-signed releases at admission, verified offline against a private Sigstore's root.

The pipeline signs with its Kubernetes service account's identity against a private Sigstore
on loopback (Fulcio, Rekor v2, a TSA, a CT log); the policy trusts that issuer and subject and
names the trusted root by ConfigMap in Affidavit's namespace. The webhook then reads nothing
but the registry and that ConfigMap: it runs with HOME and XDG directories of its own, which
stay empty, so no TUF client was ever set up (sigstore-python keeps its TUF metadata there).
Each refusal names its reason: the wrong identity, the wrong issuer, a tampered bundle, an
entry in a log the root does not name, a signature the log never saw, a root that is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from admission_e2e_support import (
    apply_and_sync,
    decision_id_in,
    deployment,
    keyless_policy,
    keyless_stack,
    recorded,
)

from affidavit.attestations.predicates import AI_PROVENANCE_V1
from affidavit.attestations.registry import RegistryClient
from affidavit.attestations.sigstore import (
    NO_LOG_ENTRY,
    private_trust_config,
    sign_dsse_keyless,
)
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import attach
from affidavit.collect import collect_provenance
from affidavit.demo.pipeline import build_image
from affidavit.demo.sample import make_sample_repo
from affidavit.demo.services import LocalRegistry
from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo
from affidavit.envtest.sigstore import PrivateSigstore
from affidavit.policy.messages import KEYLESS_FLAG, collect_provenance_fix
from keyless_sigstore import (
    Identity,
    Kubectl,
    resign,
    service_account_token,
    started_private_sigstore,
)

SYSTEM = "adm-keyless"
NS = "adm-keyless-apps"
POLICY = "adm-keyless"
ROOT_CONFIGMAP = "private-sigstore-root"
REPO = "keyless/payments-api"


@dataclass(frozen=True)
class Signed:
    sigstore: PrivateSigstore
    ci: Identity
    intruder: Identity
    images: dict[str, str]  # case -> REGISTRY/REPO@DIGEST


@pytest.fixture(scope="module")
def signed(
    control_plane: ControlPlaneInfo,
    kubectl: Kubectl,
    registry: LocalRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Signed]:
    work = tmp_path_factory.mktemp("admission-keyless")
    with started_private_sigstore(control_plane, kubectl, work / "sigstore") as sigstore:
        info = sigstore.info
        ci = service_account_token(kubectl, control_plane, "release-pipeline")
        intruder = service_account_token(kubectl, control_plane, "intruder")
        sample = make_sample_repo(work / "payments-api")
        provenance = collect_provenance(sample.path, sample.base, sample.reviewed).to_wire()
        images: dict[str, str] = {}
        with RegistryClient(insecure_hosts={registry.host}) as client:
            for case in ("good", "intruder", "tampered", "other-log", "no-log"):
                image = build_image(client, registry.host, f"{REPO}-{case}", sample.reviewed)
                assert image.digest is not None
                statement = make_statement(image.name, image.digest, AI_PROVENANCE_V1, provenance)
                bundle = sign_dsse_keyless(
                    statement,
                    identity_token=(intruder if case == "intruder" else ci).token,
                    trusted_root=info.trusted_root,
                    signing_config=(
                        sigstore.other_signing_config
                        if case == "other-log"
                        else info.signing_config
                    ),
                )
                if case == "tampered":
                    bundle = _tamper(bundle)
                if case == "no-log":
                    bundle = _unlogged(sigstore, ci, statement)
                attach(client, image, AI_PROVENANCE_V1, bundle=bundle)
                images[case] = str(image)
        yield Signed(sigstore, ci, intruder, images)


def _tamper(bundle: bytes) -> bytes:
    """The predicate edited after signing (one more approval than the pipeline recorded)."""
    import base64

    document = json.loads(bundle)
    envelope = document["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["summary"]["commits"] += 1
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(document).encode()


def _unlogged(sigstore: PrivateSigstore, ci: Identity, statement: bytes) -> bytes:
    """What the holder of a certificate's key can make after the fact: the statement signed
    with that key, without the log entry and timestamp that only the genuine signature got."""
    from sigstore.dsse import Statement
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    config = private_trust_config(sigstore.info.trusted_root, sigstore.info.signing_config)
    with SigningContext.from_trust_config(config).signer(IdentityToken(ci.token)) as signer:
        genuine = json.loads(signer.sign_dsse(Statement(statement)).to_json())
        key = signer._private_key
    later = json.loads(statement)
    later["predicate"]["summary"]["commits"] += 1
    resign(genuine, key, json.dumps(later).encode())
    genuine["verificationMaterial"].pop("tlogEntries")
    genuine["verificationMaterial"].pop("timestampVerificationData", None)
    return json.dumps(genuine).encode()


def signed_policy(
    signed: Signed, registry_host: str, *, issuer: str | None = None, root: str = ROOT_CONFIGMAP
) -> dict[str, Any]:
    signer = {
        "name": "release-pipeline",
        "issuer": issuer or signed.ci.issuer,
        "subject": signed.ci.subject,
        "trustedRoot": {"configMapRef": {"name": root}},
    }
    return keyless_policy(POLICY, f"{registry_host}/keyless/*", signer)


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo,
    registry: LocalRegistry,
    signed: Signed,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-keyless-stack")
    home = work / "webhook-home"
    env = {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    for d in env.values():
        Path(d).mkdir(parents=True, exist_ok=True)
    with keyless_stack(
        control_plane, registry.host, work, SYSTEM,
        namespace=NS, root=(ROOT_CONFIGMAP, signed.sigstore.info.trusted_root),
        policy=signed_policy(signed, registry.host), webhook_env=env,
    ) as running:  # fmt: skip
        yield running
    # Nothing set up a TUF client: sigstore-python writes its metadata under these.
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == [
        "cache",
        "config",
        "data",
    ]


def apply(stack: ClusterStack, name: str, image: str) -> Any:
    return stack.kubectl(
        "apply", "-f", "-", input=json.dumps(deployment(name, NS, image)), check=False
    )


def test_keyless_release_admitted(stack: ClusterStack, signed: Signed) -> None:
    proc = apply(stack, "good", signed.images["good"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "deployment.apps/good created"


def refusal(stack: ClusterStack, name: str, image: str) -> str:
    """kubectl is refused; the recorded decision's one violation message."""
    proc = apply(stack, name, image)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    decision = recorded(stack, decision_id_in(proc.stderr))
    assert decision.outcome == "denied"
    [violation] = decision.violations
    assert violation.message in proc.stderr
    return violation.message


def denied_for(image: str, reason: str) -> str:
    digest = image.split("@")[1]
    return (
        f"{image}: provenance.present (AccountabilityPolicy/{POLICY}): found no verified "
        f"ai-provenance/v1 attestation (rejected: {reason}); expected an ai-provenance/v1 "
        f"attestation signed by release-pipeline with subject {digest}; fix: "
        # the policy trusts only a keyless identity: the fix signs keyless
        f"{collect_provenance_fix(image, KEYLESS_FLAG)}"
    )


def test_keyless_refusals_name_their_reason(stack: ClusterStack, signed: Signed) -> None:
    ci, images = signed.ci, signed.images
    why = f"Sigstore bundle did not verify for {ci.subject} (issuer {ci.issuer})"
    reasons = {
        "intruder": f"the certificate's identity is {signed.intruder.subject}, not the trusted "
        f"identity {ci.subject} (issuer {ci.issuer})",
        "tampered": f"{why}: DSSE: invalid signature",
        "other-log": f"{why}: invalid log entry: checkpoint: invalid signature: keyring: "
        "invalid signature",
        "no-log": NO_LOG_ENTRY,
    }
    for case, reason in reasons.items():
        assert refusal(stack, case, images[case]) == denied_for(images[case], reason)


def test_wrong_issuer_and_missing_root(
    stack: ClusterStack, signed: Signed, registry: LocalRegistry
) -> None:
    good = signed.images["good"]
    github = "https://token.actions.githubusercontent.com"
    apply_and_sync(stack, signed_policy(signed, registry.host, issuer=github))
    try:
        assert refusal(stack, "good-other-issuer", good) == denied_for(
            good,
            f"the certificate's OIDC issuer is {signed.ci.issuer}, not the trusted issuer {github}",
        )
        apply_and_sync(stack, signed_policy(signed, registry.host, root="no-such-root"))
        assert refusal(stack, "good-no-root", good) == denied_for(
            good,
            "the trusted root of keyless signer release-pipeline (ConfigMap no-such-root, key "
            "trusted_root.json) could not be read",
        )
    finally:
        apply_and_sync(stack, signed_policy(signed, registry.host))
