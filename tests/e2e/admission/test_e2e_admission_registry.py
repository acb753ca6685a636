"""Registries and the fail-open path, through a real kube-apiserver.

A flood of dry-run Pods listing dozens of images on a registry that accepts connections and
never answers (a loopback server written here) fills one namespace's lookups, while a reviewed
Deployment in another namespace is admitted on its evidence (not through its policy's
fail-open path); a Pod naming a non-dockerconfig Secret as its pull
secret gets *missing evidence* under a `failurePolicy: Ignore` policy, not the fail-open path;
an image on a registry that no policy names is refused without the webhook dialling it.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admission_e2e_support import (
    Releases,
    apply_and_sync,
    decision_id_in,
    deployment,
    latest,
    pod,
    policy,
    recorded,
    running_stack,
)

from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo
from hostile_registries import HostileRegistry, StallingRegistry, hostile_registry, manifest

SYSTEM = "affidavit-e2e-registry"
FLOOD = "adm-registry-flood"
SHOP = "adm-registry-shop"
POLICIES = ("adm-registry-release", "adm-registry-slow", "adm-registry-unnamed")


@pytest.fixture(scope="module")
def slow() -> Iterator[StallingRegistry]:
    server = StallingRegistry()
    yield server
    server.close()


@pytest.fixture(scope="module")
def stranger() -> Iterator[HostileRegistry]:
    with hostile_registry(manifest) as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo,
    releases: Releases,
    slow: StallingRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-registry")
    pem = releases.public_pem
    lenient = {"failurePolicy": "Ignore", "provenance": {"required": True}}
    with running_stack(control_plane, releases.registry_host, work, SYSTEM) as running:
        for ns in (FLOOD, SHOP):
            running.kubectl("create", "namespace", ns)
        running.kubectl(
            "create", "secret", "generic", "not-docker", "-n", SHOP, "--from-literal=password=x"
        )
        for obj in (
            policy(POLICIES[0], releases.registry_host, pem, require=lenient),
            policy(POLICIES[1], slow.host, pem, match={"images": [f"{slow.host}/*"]}),
            policy(POLICIES[2], "", pem, match={"images": ["*/unnamed/*"]}, require=lenient),
        ):
            apply_and_sync(running, obj)
        try:
            yield running
        finally:
            for name in POLICIES:
                running.kubectl("delete", "accountabilitypolicy", name, "--ignore-not-found")
            for ns in (FLOOD, SHOP):
                running.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def _flood_pod(n: int, host: str) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": f"{host}/app{n}-{i}:1"} for i in range(30)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"flood-{n}", "namespace": FLOOD},
        "spec": {"containers": containers},
    }


def test_a_flood_in_one_namespace_does_not_starve_another(
    stack: ClusterStack, releases: Releases, slow: StallingRegistry
) -> None:
    results: list[subprocess.CompletedProcess[str]] = []

    def flood(n: int) -> None:
        body = json.dumps(_flood_pod(n, slow.host))
        results.append(
            stack.kubectl("create", "--dry-run=server", "-f", "-", input=body, check=False)
        )

    threads = [threading.Thread(target=flood, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for _ in range(3000):  # until the flood holds lookups on the stalled registry (bounded)
        if slow.accepted >= 4:
            break
        threading.Event().wait(0.01)
    else:
        raise AssertionError("the flood never reached the stalled registry")
    admitted = stack.apply(deployment("reviewed", SHOP, releases.reviewed.image), check=False)
    for t in threads:
        t.join()
    assert admitted.returncode == 0, admitted.stderr
    # admitted on its evidence, not through its policy's fail-open path (no warning)
    assert "Warning" not in admitted.stderr
    decision = latest(stack, SHOP, "Deployment", "reviewed")
    assert (decision.outcome, decision.violations) == ("allowed", ())
    assert len(results) == 6
    assert all(r.returncode == 1 for r in results)
    assert all("evidence.budget" in r.stderr or "unreachable" in r.stderr for r in results)


def test_a_bad_pull_secret_is_missing_evidence_under_ignore(
    stack: ClusterStack, releases: Releases
) -> None:
    obj = pod("pull-secret", SHOP, releases.reviewed.image)
    obj["spec"]["imagePullSecrets"] = [{"name": "not-docker"}]
    proc = stack.apply(obj, check=False)
    assert proc.returncode == 1
    decision = recorded(stack, decision_id_in(proc.stderr))
    assert decision.outcome == "denied"
    assert [(v.rule, v.found) for v in decision.violations] == [
        (
            "evidence.missing",
            "missing evidence: imagePullSecret adm-registry-shop/not-docker has type 'Opaque' "
            "without registry credentials",
        )
    ]


def test_a_registry_no_policy_names_is_never_dialled(
    stack: ClusterStack, stranger: HostileRegistry
) -> None:
    proc = stack.apply(pod("stranger", SHOP, f"{stranger.host}/unnamed/app:1"), check=False)
    assert proc.returncode == 1
    assert stranger.seen == []
    decision = recorded(stack, decision_id_in(proc.stderr))
    assert [(v.rule, v.found) for v in decision.violations] == [
        (
            "evidence.missing",
            f"missing evidence: registry {stranger.host} is not one the webhook contacts (no "
            "AccountabilityPolicy's match.images names it and registry.allowedHosts does not "
            "list it)",
        )
    ]
