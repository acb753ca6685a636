"""Fixtures for the end-to-end tests on a real node: the node, Affidavit's image, releases.

One node per session (``affidavit.envtest.Node``: control plane, kubelet, containerd,
kube-proxy, CoreDNS, a registry and PostgreSQL, all inside namespaces of its own). Affidavit's
image is built by ``operator/build-image`` (the build ``make image`` runs), pushed to the node's
registry and its own attestations signed with a key made here. In CI (``CI=true``) missing
binaries, or a machine that cannot make the node's namespaces, are a failure; elsewhere the
tests skip saying what is missing. A failed test gets a "node diagnostics" section: every Pod's
description, its containers' logs (the previous run's too), the events, and the tails of the
kubelet's and containerd's logs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from node_e2e_support import (
    BuiltImage,
    NodeReleases,
    Run,
    diagnose,
    pause_binary,
    runnable_release,
)

from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.registry import RegistryClient
from affidavit.demo.github_records import Approval
from affidavit.demo.sample import BO, make_sample_repo
from affidavit.envtest import (
    BinariesMissingError,
    Node,
    NodeInfo,
    find_binaries,
    find_node_binaries,
)
from binary_builds import wait_for_binaries
from image_builds import wait_for_background_build

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_IMAGE = REPO_ROOT / "operator" / "build-image"
#: The session's node while it runs (for the diagnostics of a failed test).
_RUNNING: list[NodeInfo] = []


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _cannot_make_namespaces() -> str | None:
    """Why the node's network, mount and PID namespaces cannot be made here, if they cannot."""
    if os.geteuid() != 0:
        return "it needs root (kubelet, containerd and the namespaces the node lives in)"
    for tool in ("unshare", "nsenter"):
        if not shutil.which(tool):
            return f"{tool} is not installed (util-linux)"
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "true"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if probe.returncode:
        return f"`unshare --net --mount --pid` failed: {probe.stderr.strip()}"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _RUNNING:
        report.sections.append(("node diagnostics", diagnose(_RUNNING[0])))
    return report


@pytest.fixture(scope="session")
def node() -> Iterator[NodeInfo]:
    """A running node with PostgreSQL, shared by the session."""
    reason = _cannot_make_namespaces()
    if reason:
        _missing(f"this machine cannot run a node: {reason}")
    try:
        wait_for_binaries("node")
        find_binaries(("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm"))
        find_node_binaries()
    except BinariesMissingError as e:
        _missing(str(e))
    # Not under pytest's base temp: another pytest session on the machine prunes old base
    # temps, and a node's kubelet and containerd live in this directory for the whole session.
    workdir = Path(tempfile.mkdtemp(prefix="affidavit-node-e2e-"))
    try:
        with Node(workdir, postgres=True) as info:
            _RUNNING.append(info)
            yield info
    finally:
        _RUNNING.clear()
        shutil.rmtree(workdir, ignore_errors=True)


def _runner(binary: Path, env: dict[str, str]) -> Run:
    def run(
        *args: str | Path, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(binary), *map(str, args)]
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, env=env
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{binary.name} {' '.join(map(str, args))} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture(scope="session")
def node_kubectl(node: NodeInfo) -> Run:
    return _runner(node.control_plane.kubectl, node.control_plane.env())


@pytest.fixture(scope="session")
def node_helm(node: NodeInfo, tmp_path_factory: pytest.TempPathFactory) -> Run:
    home = tmp_path_factory.mktemp("node-helm-home")
    env = {
        **node.control_plane.env(),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return _runner(node.control_plane.helm, env)


@pytest.fixture(scope="session")
def affidavit_image(node: NodeInfo, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """Affidavit's image, built by operator/build-image, pushed, its attestations signed."""
    if not BUILD_IMAGE.exists():
        _missing(f"{BUILD_IMAGE} is missing: the image build is not in this tree")
    wait_for_background_build()  # then the push below finds the layout in the cache
    work = tmp_path_factory.mktemp("affidavit-image")
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    key = work / "build.key"
    key.write_bytes(private_pem)
    proc = subprocess.run(
        [
            str(BUILD_IMAGE),
            "--push",
            f"{node.registry_local}/affidavit:e2e",
            "--sign-key",
            str(key),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO_ROOT,
    )
    if proc.returncode != 0:
        raise AssertionError(f"operator/build-image failed:\n{proc.stderr[-4000:]}")
    digest = proc.stdout.strip().splitlines()[-1]
    assert digest.startswith("sha256:"), proc.stdout
    return BuiltImage(f"{node.registry}/affidavit", digest, public_pem.decode())


@pytest.fixture(scope="session")
def node_releases(node: NodeInfo, tmp_path_factory: pytest.TempPathFactory) -> NodeReleases:
    work = tmp_path_factory.mktemp("node-releases")
    sample = make_sample_repo(work / "payments-api")
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    key = work / "ci-release.key"
    key.write_bytes(private_pem)
    signer = load_signer(key)
    approvals = [Approval(login="bo", name=BO[0], commit=sample.reviewed)]
    pause = pause_binary(find_node_binaries())
    with RegistryClient(insecure_hosts={node.registry_local}) as client:
        made = [
            runnable_release(
                client, node, "team/payments-api", pause, sample, head, approvals, signer, work
            )
            for head in (sample.reviewed, sample.pushed_after_review)
        ]
    return NodeReleases(public_pem.decode(), made[0], made[1])
