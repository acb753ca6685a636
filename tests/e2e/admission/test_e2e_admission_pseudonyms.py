"""Pseudonymous evidence through a real kube-apiserver (evidence.pseudonymousIdentities).

A RegionPolicy of the cluster's region requires that the evidence name people only by
pseudonyms, as the eu preset does (GDPR Chapter V). The same sample history is released three
times by the real pipeline code into the real registry: once collected plainly, twice with a
pseudonym key (the reviewed head and the head pushed after the review). The plain release is
refused, its denial naming the fields and never the people; the pseudonymous reviewed release is
admitted; the pseudonymous late release is refused on its review exactly as a plain one would be.
The key holder reads both the denial (``affidavit explain --decision``) and the image's answers
(``affidavit trace``) with the people re-identified, through the real CLI; without the key,
nobody's name or address is in the ledger or the trace.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from admission_e2e_support import (
    apply_and_sync,
    deployment,
    latest,
    policy,
    refused,
    region_policy,
    running_stack,
)

from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.pseudonyms import load_key
from affidavit.attestations.registry import RegistryClient
from affidavit.demo.github_records import Approval
from affidavit.demo.pipeline import Release, release
from affidavit.demo.sample import ANA, BO, make_sample_repo
from affidavit.demo.services import LocalRegistry
from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo
from affidavit.ledger import Ledger

SYSTEM = "affidavit-e2e-pseudonyms"
NS = "adm-pseudonyms"
REPO = "pseudonyms-e2e/payments-api"
RULE = "evidence.pseudonymousIdentities"
#: What the sample's history names people by, in every form the predicates hold them (as whole
#: words: a pseudonym's base32 may well hold the letters "bo").
PLAIN = ("Ana Developer", "ana@example.com", "Bo Reviewer", "bo@example.com", "bo", "ana", "Mia")


def names_anyone(text: str) -> list[str]:
    return [p for p in PLAIN if re.search(rf"\b{re.escape(p)}\b", text)]


@dataclass(frozen=True)
class Made:
    plain: Release
    reviewed: Release
    late: Release
    public_pem: str
    key_file: Path
    people: Path


@pytest.fixture(scope="module")
def made(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Made:
    work = tmp_path_factory.mktemp("pseudonym-releases")
    sample = make_sample_repo(work / "payments-api")
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    (work / "ci.key").write_bytes(private_pem)
    signer = load_signer(work / "ci.key")
    key_file = work / "pseudonym.key"
    done = subprocess.run(
        [sys.executable, "-m", "affidavit.cli", "pseudonym", "key", "-o", str(key_file)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    key = load_key(key_file)
    people = work / "people.txt"
    people.write_text(f"{ANA[0]} <{ANA[1]}>\n{BO[0]} <{BO[1]}>\nana\nbo\nmia\n")
    approvals = [Approval(login="bo", name=BO[0], commit=sample.reviewed)]
    with RegistryClient(insecure_hosts={registry.host}) as client:

        def make(head: str, name: str, pseudonyms: bool) -> Release:
            return release(client, registry.host, f"{REPO}-{name}", sample, head, approvals,
                           signer, work / name, pseudonym_key=key if pseudonyms else None)  # fmt: skip

        plain = make(sample.reviewed, "plain", False)
        reviewed = make(sample.reviewed, "reviewed", True)
        late = make(sample.pushed_after_review, "late", True)
    return Made(plain, reviewed, late, public_pem.decode(), key_file, people)


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo,
    registry: LocalRegistry,
    made: Made,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-pseudonyms")
    with running_stack(control_plane, registry.host, work, SYSTEM) as running:
        running.kubectl("create", "namespace", NS)
        matched = {"images": [f"{registry.host}/{REPO}*"]}
        apply_and_sync(running, policy(SYSTEM, registry.host, made.public_pem, match=matched))
        # the region lists the pipeline's key: pseudonyms of any other key are refused
        keys = [load_key(made.key_file).key_id]
        evidence = {"pseudonymousIdentities": True, "pseudonymKeyIds": keys}
        apply_and_sync(running, region_policy(SYSTEM, ["us-*"], evidence=evidence))
        try:
            yield running
        finally:
            running.kubectl("delete", "regionpolicy", SYSTEM, "--ignore-not-found")
            running.kubectl("delete", "accountabilitypolicy", SYSTEM, "--ignore-not-found")
            running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "affidavit.cli", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def test_plain_evidence_is_refused_and_the_ledger_names_nobody(
    stack: ClusterStack, made: Made
) -> None:
    proc = stack.apply(deployment("plain", NS, made.plain.image), check=False)
    decision = refused(stack, proc)
    assert [v.rule for v in decision.violations] == [RULE, RULE]
    found = [v.found for v in decision.violations]
    assert found[0].startswith("the ai-provenance/v1 attestation names people in plain text in")
    assert found[1].startswith("the code-review/v1 attestation names people in plain text in")
    assert all("--pseudonym-key <pseudonym key>" in v.fix for v in decision.violations)
    ledger = Ledger(stack.ledger_url)
    try:
        rows = [r for r in ledger.query(namespace=NS) if r.name == "plain"]
    finally:
        ledger.close()
    recorded = json.dumps([r.decision for r in rows]) + proc.stderr
    assert rows and names_anyone(recorded) == []


def test_pseudonymous_evidence_is_admitted_and_judged_as_plain_evidence_was(
    stack: ClusterStack, made: Made
) -> None:
    admitted = stack.apply(deployment("reviewed", NS, made.reviewed.image))
    assert admitted.stdout.strip() == "deployment.apps/reviewed created"
    assert latest(stack, NS, "Deployment", "reviewed").outcome == "allowed"

    decision = refused(stack, stack.apply(deployment("late", NS, made.late.image), check=False))
    assert [v.rule for v in decision.violations] == ["review.critical.independentApprovals"]
    bo = load_key(made.key_file).of("bo")
    assert f"(not counted: {bo} approved earlier revision" in decision.violations[0].found

    # the key holder reads the same record with the people named
    shown = cli("explain", "--decision", decision.id, "--ledger", stack.ledger_url,
                "--pseudonym-key", str(made.key_file), "--people", str(made.people))  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "(not counted: bo approved earlier revision" in shown.stdout
    assert bo not in shown.stdout
    # and without the key, the pseudonym is all there is
    bare = cli("explain", "--decision", decision.id, "--ledger", stack.ledger_url)
    assert bare.returncode == 0, bare.stderr
    assert bo in bare.stdout and "not counted: bo " not in bare.stdout
    half = cli("explain", "--decision", decision.id, "--ledger", stack.ledger_url,
               "--people", str(made.people))  # fmt: skip
    assert (half.returncode, half.stdout) == (2, "")
    assert half.stderr.startswith("error: --people and --pseudonym-key go together")


def test_the_key_holder_traces_who_accepted_and_reviewed(
    made: Made, registry: LocalRegistry, tmp_path: Path
) -> None:
    pem = tmp_path / "ci.pub"
    pem.write_text(made.public_pem)
    common = ("trace", made.reviewed.image, "--key", str(pem), "--insecure-registry", registry.host)
    bare = cli(*common)
    assert bare.returncode == 0, bare.stderr
    assert names_anyone(bare.stdout) == []
    assert "accepted by psn:" in bare.stdout
    shown = cli(*common, "--pseudonym-key", str(made.key_file), "--people", str(made.people))
    assert shown.returncode == 0, shown.stderr
    assert "accepted by Ana Developer <ana@example.com>" in shown.stdout
    assert "reviewers: bo" in shown.stdout
    as_json = cli(*common, "--json", "--pseudonym-key", str(made.key_file),
                  "--people", str(made.people))  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    answers = json.loads(as_json.stdout)
    assert "Ana Developer <ana@example.com>" in json.dumps(answers)


def test_the_api_server_refuses_a_key_id_that_is_not_one(stack: ClusterStack) -> None:
    bad = region_policy(f"{SYSTEM}-bad", ["us-*"], evidence={"pseudonymKeyIds": ["Team-Key"]})
    proc = stack.apply(bad, check=False)
    assert proc.returncode == 1
    assert "spec.evidence.pseudonymKeyIds[0]" in proc.stderr, proc.stderr
    assert "should match '^[0-9a-f]{16}$'" in proc.stderr, proc.stderr
