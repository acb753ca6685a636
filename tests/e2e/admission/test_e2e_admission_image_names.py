"""One name for one image, on a real control plane: spelling an image another way neither
escapes the policy that names it nor passes in silence.

The policy here names the suite's registry as ``localhost:PORT`` (its canonical form). A Pod
that writes the host in upper case is judged by that policy (and refused when the change is
unreviewed); the ledger and the message carry the canonical name. A Pod that reaches the same
registry as ``127.0.0.1:PORT`` is another name that no policy matches: kubectl shows a warning
naming it and the ledger records the decision; with ``unmatchedImages: Deny`` (the webhook's flag,
or a pci-dss RegionPolicy of the cluster's region) the Pod is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from admission_e2e_support import (
    HOME_REGION,
    REPO,
    Releases,
    apply_and_sync,
    delete_and_sync,
    latest,
    pod,
    policy,
    refused,
    region_policy,
    review_violation,
    running_stack,
)

from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo
from affidavit.policy import ImageRef

SYSTEM = "affidavit-e2e-names"
NS = "adm-names"
POLICY = "adm-names-localhost"


def port_of(releases: Releases) -> str:
    return releases.registry_host.rsplit(":", 1)[1]


def localhost_policy(releases: Releases) -> dict[str, Any]:
    """The suite's policy, naming the registry by its other canonical name, localhost:PORT."""
    return policy(POLICY, f"localhost:{port_of(releases)}", releases.public_pem)


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo, releases: Releases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-names")
    with running_stack(control_plane, releases.registry_host, work, SYSTEM) as running:
        running.kubectl("create", "namespace", NS)
        apply_and_sync(running, localhost_policy(releases))
        try:
            yield running
        finally:
            running.kubectl("delete", "accountabilitypolicy", POLICY, "--ignore-not-found")
            running.kubectl("delete", "regionpolicy", "adm-names-pci", "--ignore-not-found")
            running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")


def unmatched_warning(image: str, source: str, setting: str, control: str | None = None) -> str:
    cite = f" [{control}]" if control else ""
    name = image.split("@", 1)[0]
    return (
        f"{image}: image.unmatched ({source}{cite}): found no AccountabilityPolicy matches this "
        f"image; expected every image under an AccountabilityPolicy (unmatchedImages: {setting}); "
        f"fix: add {name} (or a glob that covers it) to match.images of an AccountabilityPolicy, "
        "or run the image under the name a policy covers; "
        f"`affidavit explain {image} --policy FILE` shows what matches"
    )


def test_an_upper_case_registry_is_judged_by_the_policy_that_names_it(
    stack: ClusterStack, releases: Releases
) -> None:
    late = releases.late
    port = port_of(releases)
    written = f"LOCALHOST:{port}/{REPO}@{late.digest}"
    canonical = f"localhost:{port}/{REPO}@{late.digest}"
    decision = refused(stack, stack.apply(pod("names-upper", NS, written), check=False))
    assert decision.images == (ImageRef(canonical, late.digest),)
    assert [v.message for v in decision.violations] == [
        review_violation(POLICY, canonical, late.revision, releases.reviewed.revision)
    ]
    # the reviewed release under the same spelling is admitted on its evidence
    reviewed = f"LOCALHOST:{port}/{REPO}@{releases.reviewed.digest}"
    proc = stack.apply(pod("names-upper-ok", NS, reviewed))
    assert proc.stdout.strip() == "pod/names-upper-ok created"
    assert proc.stderr == ""
    decision = latest(stack, NS, "Pod", "names-upper-ok")
    assert decision.outcome == "allowed"
    assert decision.images == (
        ImageRef(f"localhost:{port}/{REPO}@{releases.reviewed.digest}", releases.reviewed.digest),
    )


def test_another_name_for_the_registry_is_warned_about_and_recorded(
    stack: ClusterStack, releases: Releases
) -> None:
    image = releases.late.image  # 127.0.0.1:PORT/...: the same registry, a name no policy has
    proc = stack.apply(pod("names-other", NS, image))
    assert proc.stdout.strip() == "pod/names-other created"
    warning = unmatched_warning(image, "cluster setting unmatchedImages=Warn", "Warn")
    assert proc.stderr.splitlines() == [f"Warning: {warning}"]
    decision = latest(stack, NS, "Pod", "names-other")
    assert (decision.outcome, decision.policies) == ("warned", ())
    assert decision.images == (ImageRef(image, releases.late.digest),)
    assert [v.message for v in decision.violations] == [warning]


def test_a_digest_is_judged_by_the_policy_naming_its_repository_by_tag(
    stack: ClusterStack, releases: Releases
) -> None:
    """A policy naming the repository as ``REPO:*`` (the form ``affidavit explain`` suggests)
    covers the unreviewed release by digest alone, and under a tag the requester made up: the
    runtime pulls the digest, whatever tag is written beside it."""
    host = releases.registry_host  # 127.0.0.1:PORT: no other policy of this suite names it
    tagged = policy("adm-names-every-tag", host, releases.public_pem,
                    match={"images": [f"{host}/{REPO}:*"]})  # fmt: skip
    apply_and_sync(stack, tagged)
    try:
        pinned = f"{host}/{REPO}@{releases.late.digest}"
        # the fix's `affidavit attest` names the digest, whatever tag the requester wrote
        fix = review_violation("adm-names-every-tag", pinned, releases.late.revision,
                               releases.reviewed.revision).removeprefix(pinned)  # fmt: skip
        for name, image in (
            ("names-digest", pinned),
            ("names-made-up-tag", f"{host}/{REPO}:made-up@{releases.late.digest}"),
        ):
            decision = refused(stack, stack.apply(pod(name, NS, image), check=False))
            assert [p.name for p in decision.policies] == ["adm-names-every-tag"]
            assert [v.message for v in decision.violations] == [image + fix]
    finally:
        delete_and_sync(stack, "accountabilitypolicy", "adm-names-every-tag")


def test_deny_refuses_an_unmatched_image(stack: ClusterStack, releases: Releases) -> None:
    image = releases.late.image
    stack.settings = replace(stack.settings, unmatched_images="Deny")
    try:
        stack.start_webhook()
        decision = refused(stack, stack.apply(pod("names-denied", NS, image), check=False))
        assert [v.message for v in decision.violations] == [
            unmatched_warning(image, "cluster setting unmatchedImages=Deny", "Deny")
        ]
    finally:
        stack.settings = replace(stack.settings, unmatched_images="Warn")
        stack.start_webhook()


def test_a_pci_region_policy_denies_unmatched_images_cluster_wide(
    stack: ClusterStack, releases: Releases
) -> None:
    image = releases.late.image
    apply_and_sync(stack, region_policy("adm-names-pci", [HOME_REGION], jurisdictions=["pci-dss"]))
    try:
        decision = refused(stack, stack.apply(pod("names-pci", NS, image), check=False))
        assert [v.message for v in decision.violations] == [
            unmatched_warning(
                image, "preset/pci-dss via RegionPolicy/adm-names-pci", "Deny", "PCI DSS 6.3.2"
            )
        ]
    finally:
        delete_and_sync(stack, "regionpolicy", "adm-names-pci")
