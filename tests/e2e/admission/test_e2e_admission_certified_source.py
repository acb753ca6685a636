"""A keyless statement must describe the source its certificate certifies (``certifiedSource``).

The policy trusts every release workflow of the ``acme`` organisation on GitHub (issuer plus a
subject regular expression, as policy-controller's examples write it). A developer with a
scratch repository of that organisation builds unreviewed code there, collects provenance from
a clone of ``acme/payments-api`` at its reviewed revision, and signs it keyless from the scratch
repository's workflow. Fulcio certifies what GitHub's token says: the scratch repository and the
commit its workflow ran at. Before this rule the signature verified, the statement read as the
payments repository's reviewed revision, and the image was admitted.

Real: the private Fulcio (issuer type ``github-workflow``), Rekor v2, the TSA, the registry, the
kube-apiserver and the webhook. The one fake is the OIDC issuer standing in for GitHub's token
service (``ci_oidc``): only GitHub mints tokens with a ``repository`` claim.
"""

from __future__ import annotations

import json
import subprocess
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
    latest,
    recorded,
)

from affidavit.attestations.predicates import AI_PROVENANCE_V1
from affidavit.attestations.registry import RegistryClient
from affidavit.attestations.sigstore import sign_dsse_keyless
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import attach
from affidavit.cli.main import main
from affidavit.collect import collect_provenance
from affidavit.demo.pipeline import build_image
from affidavit.demo.sample import make_sample_repo
from affidavit.demo.services import LocalRegistry
from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo
from affidavit.envtest.sigstore import PrivateSigstore
from binary_builds import sigstore_binaries_or_skip
from ci_oidc import GitHubActionsIssuer, Workflow

SYSTEM = "adm-certified"
NS = "adm-certified-apps"
POLICY = "adm-certified"
ROOT_CONFIGMAP = "private-sigstore-root"
REPO = "certified/payments-api"
PAYMENTS = "acme/payments-api"
REUSABLE = "acme/release-workflows/.github/workflows/attest.yml@refs/heads/main"


@dataclass(frozen=True)
class Signed:
    issuer: GitHubActionsIssuer
    trusted_root: Path  # the private Sigstore's, kept after it stops
    reviewed: str  # the revision the provenance describes
    images: dict[str, str]  # case -> REGISTRY/REPO@DIGEST
    jobs: dict[str, Workflow]  # case -> the workflow that signed


@pytest.fixture(scope="module")
def signed(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    sigstore_binaries_or_skip()
    work = tmp_path_factory.mktemp("admission-certified")
    sample = make_sample_repo(work / "payments-api")
    subprocess.run(
        ["git", "-C", str(sample.path), "remote", "set-url", "origin",
         f"git@github.com:{PAYMENTS}.git"],
        check=True,
    )  # fmt: skip
    provenance = collect_provenance(sample.path, sample.base, sample.reviewed).to_wire()
    assert provenance["source"]["repository"] == f"git@github.com:{PAYMENTS}.git"
    jobs = {
        "payments": Workflow(PAYMENTS, sample.reviewed),
        # the developer's own repository of the organisation, at the same commit id
        "scratch": Workflow("acme/scratch", sample.reviewed),
        # the payments repository's workflow, run at another commit than the one described
        "other-commit": Workflow(PAYMENTS, sample.pushed_after_review),
        # the hardened set-up: every repository calls one reusable workflow of a protected
        # repository, and the policy trusts that workflow alone (the certificate's subject)
        "payments-reusable": Workflow(PAYMENTS, sample.reviewed, reusable=REUSABLE),
        "scratch-reusable": Workflow("acme/scratch", sample.reviewed, reusable=REUSABLE),
        # the same reusable workflow, called by a pull request's run: the same subject
        "payments-reusable-pr": Workflow(
            PAYMENTS,
            sample.reviewed,
            ref="refs/pull/7/merge",
            reusable=REUSABLE,
            event="pull_request",
        ),
    }
    with (
        GitHubActionsIssuer(work / "github") as issuer,
        PrivateSigstore(
            work / "sigstore", {issuer.url: "github-workflow"}, issuer_ca_file=issuer.ca_file
        ) as sigstore,
        RegistryClient(insecure_hosts={registry.host}) as client,
    ):
        images: dict[str, str] = {}
        for case, job in jobs.items():
            image = build_image(client, registry.host, f"{REPO}-{case}", sample.reviewed)
            assert image.digest is not None
            statement = make_statement(image.name, image.digest, AI_PROVENANCE_V1, provenance)
            bundle = sign_dsse_keyless(
                statement,
                identity_token=issuer.token(job),
                trusted_root=sigstore.trusted_root,
                signing_config=sigstore.signing_config,
            )
            attach(client, image, AI_PROVENANCE_V1, bundle=bundle)
            images[case] = str(image)
        root = work / "trusted_root.json"
        root.write_bytes(sigstore.trusted_root.read_bytes())
    yield Signed(issuer, root, sample.reviewed, images, jobs)


def org_policy(
    signed: Signed,
    registry_host: str,
    *,
    subject: str | None = None,
    run: dict[str, list[str]] | None = None,
    **require: Any,
) -> dict[str, Any]:
    """Trust every release workflow of the acme organisation (or one ``subject``), for the
    runs ``run`` names (sourceRepositoryRefs, buildTriggers; None: any run)."""
    who = (
        {"subject": subject}
        if subject
        else {
            "subjectRegExp": r"https://github\.com/acme/[^/]+/\.github/workflows/release\.yml"
            r"@refs/heads/main"
        }
    )
    signer = {
        "name": "acme-release",
        "issuer": signed.issuer.url,
        **who,
        "trustedRoot": {"configMapRef": {"name": ROOT_CONFIGMAP}},
        **(run or {}),
    }
    return keyless_policy(POLICY, f"{registry_host}/certified/*", signer, **require)


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo,
    registry: LocalRegistry,
    signed: Signed,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-certified-stack")
    with keyless_stack(
        control_plane, registry.host, work, SYSTEM,
        namespace=NS, root=(ROOT_CONFIGMAP, signed.trusted_root),
        policy=org_policy(signed, registry.host),
    ) as running:  # fmt: skip
        yield running


def apply(stack: ClusterStack, name: str, image: str) -> subprocess.CompletedProcess[str]:
    return stack.kubectl(
        "apply", "-f", "-", input=json.dumps(deployment(name, NS, image)), check=False
    )


def certified_violation(stack: ClusterStack, name: str, image: str) -> str:
    """kubectl is refused; the recorded decision's ``source.certified`` message."""
    proc = apply(stack, name, image)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    decision = recorded(stack, decision_id_in(proc.stderr))
    assert decision.outcome == "denied"
    [violation] = [v for v in decision.violations if v.rule == "source.certified"]
    assert violation.message in proc.stderr
    return violation.message


def expected(image: str, signed: Signed, case: str) -> str:
    job = signed.jobs[case]
    return (
        f"{image}: source.certified (AccountabilityPolicy/{POLICY}): found an ai-provenance/v1 "
        f"attestation claiming git@github.com:{PAYMENTS}.git at {signed.reviewed[:12]}, signed "
        f"by acme-release with a certificate for https://github.com/{job.repository} at "
        f"{job.sha[:12]}; expected the repository and revision the signing certificate "
        "certifies (the CI platform's claims, not the pipeline's); fix: sign the "
        f"ai-provenance/v1 in the pipeline of git@github.com:{PAYMENTS}.git for the revision "
        "the image was built from; if another repository's pipeline builds it on purpose, set "
        "`spec.require.certifiedSource: false` in every policy that applies"
    )


def test_the_repositorys_own_workflow_at_the_described_commit_is_admitted(
    stack: ClusterStack, signed: Signed
) -> None:
    proc = apply(stack, "payments", signed.images["payments"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "deployment.apps/payments created"
    # the ledger says which repository's workflow vouched for it, not only "acme-release"
    [used] = latest(stack, NS, "Deployment", "payments").evidence
    assert (used.signer, used.certified_repository, used.certified_revision) == (
        "acme-release",
        f"https://github.com/{PAYMENTS}",
        signed.reviewed,
    )


def test_another_repositorys_workflow_or_another_commit_is_refused(
    stack: ClusterStack, signed: Signed
) -> None:
    for case in ("scratch", "other-commit"):
        image = signed.images[case]
        assert certified_violation(stack, case, image) == expected(image, signed, case)


def test_a_central_build_repository_turns_the_rule_off_in_its_policy(
    stack: ClusterStack, signed: Signed, registry: LocalRegistry
) -> None:
    apply_and_sync(stack, org_policy(signed, registry.host, certifiedSource=False))
    try:
        proc = apply(stack, "scratch-allowed", signed.images["scratch"])
        assert proc.returncode == 0, proc.stderr
    finally:
        apply_and_sync(stack, org_policy(signed, registry.host))


def trusting_the_organisation(signed: Signed) -> list[str]:
    """``verify``/``trace`` flags trusting every workflow of the acme organisation."""
    return [
        "--keyless-identity-regexp", r"https://github\.com/acme/.+",
        "--keyless-issuer", signed.issuer.url,
        "--trusted-root", str(signed.trusted_root),
    ]  # fmt: skip


def test_verify_shows_the_source_the_certificate_names(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["verify", signed.images["scratch"], *trusting_the_organisation(signed)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == (
        f"            certified source https://github.com/acme/scratch at {signed.reviewed}"
    )
    assert main([*argv, "--json"]) == 0
    [verified] = json.loads(capsys.readouterr().out)["verified"]
    assert verified["certifiedSource"] == {
        "repository": "https://github.com/acme/scratch",
        "revision": signed.reviewed,
    }


def test_one_trusted_reusable_workflow_serves_every_repository_of_the_organisation(
    stack: ClusterStack, signed: Signed, registry: LocalRegistry
) -> None:
    """Trusting only the protected reusable workflow keeps a caller from rewriting what signs
    (a workflow file on a branch is the developer's to edit), and the certified source keeps
    each caller to its own repository."""
    apply_and_sync(
        stack, org_policy(signed, registry.host, subject=f"https://github.com/{REUSABLE}")
    )
    try:
        proc = apply(stack, "payments-reusable", signed.images["payments-reusable"])
        assert proc.returncode == 0, proc.stderr
        image = signed.images["scratch-reusable"]
        assert certified_violation(stack, "scratch-reusable", image) == expected(
            image, signed, "scratch-reusable"
        )
    finally:
        apply_and_sync(stack, org_policy(signed, registry.host))


def test_trace_names_the_certified_source_beside_the_signer(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["trace", signed.images["payments"], *trusting_the_organisation(signed)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    signer = r"/https://github\.com/acme/.+/"
    assert lines[2:4] == [
        f"  evidence signed by: {signer}",
        f"  certified source: https://github.com/{PAYMENTS} at {signed.reviewed}",
    ]
    assert main([*argv, "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert answers["certifiedSources"] == [f"https://github.com/{PAYMENTS} at {signed.reviewed}"]


def test_a_pull_requests_run_of_the_trusted_workflow_is_refused_where_the_signer_names_runs(
    stack: ClusterStack, signed: Signed, registry: LocalRegistry
) -> None:
    """The reusable workflow's subject is the same whether a push to main or a pull request's
    run called it: trusting the subject alone, the pull request's run signs for the cluster.
    A signer that names the refs and triggers it is trusted for refuses that run (Fulcio's
    Source Repository Ref and Build Trigger, from the token's ``ref`` and ``event_name``)."""
    reusable = f"https://github.com/{REUSABLE}"
    image = signed.images["payments-reusable-pr"]
    apply_and_sync(stack, org_policy(signed, registry.host, subject=reusable))
    try:
        proc = apply(stack, "payments-pr-subject", image)
        assert proc.returncode == 0, proc.stderr  # the subject alone trusts the PR's run
        main_only = {"sourceRepositoryRefs": ["refs/heads/main"], "buildTriggers": ["push"]}
        apply_and_sync(stack, org_policy(signed, registry.host, subject=reusable, run=main_only))
        proc = apply(stack, "payments-pr-run", image)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        decision = recorded(stack, decision_id_in(proc.stderr))
        [missing] = [v for v in decision.violations if v.rule == "provenance.present"]
        assert (
            "the certificate's Source Repository Ref is refs/pull/7/merge, not one the signer "
            f"{reusable} is trusted for: refs/heads/main"
        ) in missing.message
        proc = apply(stack, "payments-main-run", signed.images["payments-reusable"])
        assert proc.returncode == 0, proc.stderr
    finally:
        apply_and_sync(stack, org_policy(signed, registry.host))


def test_verify_takes_the_runs_a_signer_is_trusted_for(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    reusable = f"https://github.com/{REUSABLE}"
    argv = [
        "--keyless-identity", reusable, "--keyless-issuer", signed.issuer.url,
        "--trusted-root", str(signed.trusted_root),
        "--keyless-source-ref", "refs/heads/main", "--keyless-build-trigger", "push",
    ]  # fmt: skip
    assert main(["verify", signed.images["payments-reusable"], *argv]) == 0
    capsys.readouterr()
    assert main(["verify", signed.images["payments-reusable-pr"], *argv]) == 4
    assert (
        "the certificate's Source Repository Ref is refs/pull/7/merge, not one the signer "
        f"{reusable} is trusted for: refs/heads/main"
    ) in capsys.readouterr().out
