"""Evidence residency through a real kube-apiserver: the image's registry must be in the region.

A RegionPolicy of the cluster's region (us-east-1) requires evidence kept in the US (as
us-fedramp-moderate does, NIST SP 800-53 SA-9(5)) and says where two real registries store
data: the pipeline's registry in eu-west-1, a mirror in us-east-1. The reviewed release, whose
evidence verifies, is refused from the pipeline's registry with the exact `affidavit copy` that
fixes it; after that copy (the real CLI, registry to registry, digests unchanged) the mirror's
image is admitted on the copied attestations. Copying the unreviewed release into the region
launders nothing: it is refused on its review, as it was at home.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from admission_e2e_support import (
    REPO,
    Releases,
    apply_and_sync,
    delete_and_sync,
    deployment,
    latest,
    policy,
    refused,
    region_policy,
    running_stack,
)

from affidavit.demo.services import LocalRegistry
from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo

SYSTEM = "affidavit-e2e-residency"
NS = "adm-residency"
REGION_POLICY = "adm-residency-us"
POLICIES = ("adm-residency-home", "adm-residency-mirror")


@pytest.fixture(scope="module")
def mirror(mirror_registry: LocalRegistry) -> LocalRegistry:
    """The second real registry, the one the RegionPolicy places in the US."""
    return mirror_registry


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo,
    releases: Releases,
    mirror: LocalRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-residency")
    with running_stack(
        control_plane,
        releases.registry_host,
        work,
        SYSTEM,
        webhook_args=("--insecure-registry", mirror.host),
    ) as running:
        running.kubectl("create", "namespace", NS)
        for name, host in zip(POLICIES, (releases.registry_host, mirror.host), strict=True):
            apply_and_sync(running, policy(name, host, releases.public_pem))
        located = [
            {"registry": releases.registry_host, "location": "eu-west-1"},
            {"registry": mirror.host, "location": "us-east-1"},
        ]
        evidence = {"residency": "us", "registryLocations": located}
        apply_and_sync(running, region_policy(REGION_POLICY, ["us-*"], evidence=evidence))
        try:
            yield running
        finally:
            delete_and_sync(running, "regionpolicy", REGION_POLICY)
            for name in POLICIES:
                running.kubectl("delete", "accountabilitypolicy", name, "--ignore-not-found")
            running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")


def copy(source: str, destination: str, *hosts: str) -> subprocess.CompletedProcess[str]:
    insecure = [arg for host in hosts for arg in ("--insecure-registry", host)]
    return subprocess.run(
        [sys.executable, "-m", "affidavit.cli", "copy", source, destination, *insecure],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


def test_an_image_from_a_registry_outside_the_region_is_refused_until_copied_in(
    stack: ClusterStack, releases: Releases, mirror: LocalRegistry
) -> None:
    reviewed = releases.reviewed
    home = releases.registry_host
    decision = refused(stack, stack.apply(deployment("pay-home", NS, reviewed.image), check=False))
    assert [v.message for v in decision.violations] == [
        f"{reviewed.image}: evidence.residency (RegionPolicy/{REGION_POLICY}): found {home} keeps "
        f"the image and its attestations, and is declared in eu-west-1 (RegionPolicy/"
        f"{REGION_POLICY}); expected the image and its attestations in a registry located in "
        f"us: {mirror.host} (RegionPolicy/{REGION_POLICY}); fix: copy the image with its "
        f"attestations into a registry in us (`affidavit copy {home}/{REPO}@{reviewed.digest} "
        f"{mirror.host}/{REPO}`), deploy that copy, and let a policy's match.images name it"
    ]
    # the evidence itself verified: residency is the only thing wrong with it
    assert decision.evidence, decision

    done = copy(f"{home}/{REPO}@{reviewed.digest}", f"{mirror.host}/{REPO}", home, mirror.host)
    assert done.returncode == 0, done.stdout + done.stderr

    copied = f"{mirror.host}/{REPO}@{reviewed.digest}"
    admitted = stack.apply(deployment("pay-mirror", NS, copied))
    assert admitted.stdout.strip() == "deployment.apps/pay-mirror created"
    allowed = latest(stack, NS, "Deployment", "pay-mirror")
    assert allowed.outcome == "allowed", [v.message for v in allowed.violations]
    # admitted on the attestations copied beside the mirror's image, not on anything at home
    assert {e.image for e in allowed.evidence} == {copied}
    # and the ledger says where that evidence was kept, as the RegionPolicy placed it then
    assert {e.location for e in allowed.evidence} == {f"{mirror.host} in us-east-1"}
    assert {e.predicate_type.rsplit("/", 2)[-2] for e in allowed.evidence} >= {
        "ai-provenance",
        "code-review",
    }


def test_copying_an_unreviewed_image_into_the_region_launders_nothing(
    stack: ClusterStack, releases: Releases, mirror: LocalRegistry
) -> None:
    late = releases.late
    home = releases.registry_host
    done = copy(f"{home}/{REPO}@{late.digest}", f"{mirror.host}/{REPO}", home, mirror.host)
    assert done.returncode == 0, done.stdout + done.stderr
    copied = f"{mirror.host}/{REPO}@{late.digest}"
    decision = refused(stack, stack.apply(deployment("late-mirror", NS, copied), check=False))
    rules = [v.rule for v in decision.violations]
    assert "evidence.residency" not in rules
    assert any(r.startswith("review.") for r in rules), rules
