"""kind-config.yaml, decoded strictly by kind's own config types (sigs.k8s.io/kind's v1alpha4
package, built from the Go module proxy by scripts/kind-config-check): no unknown field, valid
containerd and kubeadm patches; and it sets up what Affidavit needs: region labels on every node,
the local registry mirror, and the AdmissionConfiguration that gives the apiserver a client
certificate for Affidavit's Service only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHECK = REPO / "scripts" / "kind-config-check"


def check(path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("go") is None and not Path("/usr/local/go/bin/go").exists():
        message = "the Go toolchain is not installed (needed to build kind's config types)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        [str(CHECK), str(path)], capture_output=True, text=True, timeout=900, check=False
    )


@pytest.fixture(scope="module")
def decoded() -> dict[str, Any]:
    proc = check(REPO / "kind-config.yaml")
    assert proc.returncode == 0, proc.stderr
    config: dict[str, Any] = json.loads(proc.stdout)
    return config


def test_every_node_is_in_a_region(decoded: dict[str, Any]) -> None:
    roles = [n["role"] for n in decoded["nodes"]]
    assert roles == ["control-plane", "worker"]
    for node in decoded["nodes"]:
        assert node["labels"]["topology.kubernetes.io/region"] == "eu-west-1"


def test_nodes_pull_localhost_5001_from_the_local_registry(decoded: dict[str, Any]) -> None:
    (patch,) = decoded["containerdConfigPatches"]
    assert 'config_path = "/etc/containerd/certs.d"' in patch
    for node in decoded["nodes"]:
        mounts = {m["containerPath"]: m["hostPath"] for m in node["extraMounts"]}
        assert mounts["/etc/containerd/certs.d"] == "operator/kind/certs.d"
    hosts = (REPO / "operator/kind/certs.d/localhost:5001/hosts.toml").read_text()
    assert '[host."http://kind-registry:5000"]' in hosts


def test_the_apiserver_presents_a_client_certificate_to_affidavit_only(
    decoded: dict[str, Any],
) -> None:
    control_plane = decoded["nodes"][0]
    mounts = {m["containerPath"]: m["hostPath"] for m in control_plane["extraMounts"]}
    assert mounts["/etc/kubernetes/affidavit"] == "operator/kind/admission"
    (patch,) = control_plane["kubeadmConfigPatchesJSON6902"]
    assert (patch["group"], patch["version"], patch["kind"]) == (
        "kubeadm.k8s.io", "v1beta4", "ClusterConfiguration",
    )  # fmt: skip
    operations = yaml.safe_load(patch["patch"])
    assert operations[0]["value"] == {
        "name": "admission-control-config-file",
        "value": "/etc/kubernetes/affidavit/admission-configuration.yaml",
    }
    admission = yaml.safe_load(
        (REPO / "operator/kind/admission/admission-configuration.yaml").read_text()
    )
    kubeconfigs = {p["name"]: p["configuration"]["kubeConfigFile"] for p in admission["plugins"]}
    assert kubeconfigs == {
        "ValidatingAdmissionWebhook": "/etc/kubernetes/affidavit/webhook-kubeconfig.yaml",
        "MutatingAdmissionWebhook": "/etc/kubernetes/affidavit/webhook-kubeconfig.yaml",
    }
    kubeconfig = yaml.safe_load(
        (REPO / "operator/kind/admission/webhook-kubeconfig.yaml").read_text()
    )
    # The chart's Service for release affidavit in affidavit-system; no "*" entry.
    assert [u["name"] for u in kubeconfig["users"]] == ["affidavit.affidavit-system.svc:443"]


def test_an_unknown_field_is_refused(tmp_path: Path) -> None:
    text = (REPO / "kind-config.yaml").read_text().replace("    labels:\n", "    lables:\n", 1)
    bad = tmp_path / "kind-config.yaml"
    bad.write_text(text)
    proc = check(bad)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"kind-config-check: {bad}: error unmarshaling JSON: ")
    assert 'unknown field "lables"' in proc.stderr


def test_a_malformed_containerd_patch_is_refused(tmp_path: Path) -> None:
    text = (REPO / "kind-config.yaml").read_text().replace('config_path = "', "config_path = ", 1)
    bad = tmp_path / "kind-config.yaml"
    bad.write_text(text)
    proc = check(bad)
    assert proc.returncode == 1
    assert proc.stderr.startswith("kind-config-check: containerdConfigPatches[0] is not TOML: ")
