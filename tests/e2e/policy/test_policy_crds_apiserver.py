"""The generated CRDs in a real kube-apiserver: they install, and their validations fire.

Applies charts/affidavit/crds to a real control plane (etcd + kube-apiserver), then applies
valid and invalid objects and asserts the API server's exact complaints: enums, minimums, the
CEL rules, list-map keys and pruning of unknown fields. Objects read back from the API server
must load into a PolicyIndex without errors.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from affidavit.envtest import ControlPlaneInfo
from affidavit.policy import PolicyIndex
from control_planes import started_control_plane
from policy_builders import PEM, exception, policy, region_policy

pytestmark = pytest.mark.e2e
CHART_CRDS = Path(__file__).resolve().parents[3] / "charts" / "affidavit" / "crds"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneInfo]:
    """Its own control plane: this module reads back every object it lists."""
    with started_control_plane(
        tmp_path_factory.mktemp("cp"), with_controller_manager=False
    ) as info:
        yield info


def kubectl(info: ControlPlaneInfo, *args: str, stdin: str | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [str(info.kubectl), f"--kubeconfig={info.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip()


@pytest.fixture(scope="module")
def crds(plane: ControlPlaneInfo) -> ControlPlaneInfo:
    assert kubectl(plane, "apply", "-f", str(CHART_CRDS))[0] == 0
    code, out = kubectl(
        plane, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"
    )
    assert code == 0, out
    assert kubectl(plane, "create", "namespace", "shop")[0] == 0
    return plane


def apply(info: ControlPlaneInfo, obj: dict[str, Any]) -> tuple[int, str]:
    return kubectl(info, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(obj))


def test_valid_objects_are_accepted_and_read_back_into_an_index(crds: ControlPlaneInfo) -> None:
    for obj in (
        policy(),
        region_policy("eu", ["eu-*"], jurisdictions=["pci-dss"], evidence={"residency": "eu"}),
        exception("hotfix"),
    ):
        code, out = apply(crds, obj)
        assert code == 0, out

    def items(plural: str) -> list[dict[str, Any]]:
        code, out = kubectl(crds, "get", plural, "-A", "-o", "json")
        assert code == 0, out
        return list(json.loads(out)["items"])

    ix = PolicyIndex.from_objects(
        items("accountabilitypolicies"),
        items("regionpolicies"),
        items("accountabilityexceptions"),
    )
    assert ix.errors == {}
    assert [p.name for p in ix.policies] == ["baseline"]
    code, out = kubectl(crds, "get", "acpol")
    assert out.splitlines()[0].split() == ["NAME", "MODE", "READY", "AGE"]


@pytest.mark.parametrize(
    ("obj", "complaint"),
    [
        (
            policy("bad-mode", mode="Strict"),
            'spec.mode: Unsupported value: "Strict": supported values: "Enforce", "Warn", "Audit"',
        ),
        (
            policy("bad-min", require={"tiers": {"critical": {"approvals": -1}}}),
            "spec.require.tiers.critical.approvals in body should be greater than or equal to 0",
        ),
        (
            policy(
                "bad-indep",
                require={"tiers": {"critical": {"approvals": 1, "independentApprovals": 2}}},
            ),
            "spec.require.tiers[critical]: Invalid value: independentApprovals cannot exceed "
            "approvals",
        ),
        (
            policy(
                "bad-sel",
                match={"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            ),
            "spec.match.namespaceSelector.matchExpressions[0]: Invalid value: operators In and "
            "NotIn need at least one value",
        ),
        (
            policy(
                "bad-signers",
                signers={
                    "keys": [{"name": "ci", "publicKey": PEM}, {"name": "ci", "publicKey": PEM}]
                },
            ),
            '.spec.signers.keys: duplicate entries for key [name="ci"]',
        ),
        (policy("bad-field", requires={}), ".spec.requires: field not declared in schema"),
        (
            exception("bad-date", expiresAt="tomorrow"),
            'spec.expiresAt in body must be of type date-time: "tomorrow"',
        ),
        (
            exception("bad-owner", owner="victor"),
            "spec: Invalid value: the owner cannot approve their own exception",
        ),
        (
            exception("bad-empty", images=[]),
            "spec: Invalid value: an exception must name images or workloads",
        ),
    ],
    ids=lambda v: v["metadata"]["name"] if isinstance(v, dict) else "",
)
def test_invalid_objects_are_refused_by_the_api_server(
    crds: ControlPlaneInfo, obj: dict[str, Any], complaint: str
) -> None:
    code, out = apply(crds, obj)
    assert code != 0
    assert complaint in out
    # the engine refuses the same object
    kind = obj["kind"]
    ix = PolicyIndex.from_objects(
        [obj] if kind == "AccountabilityPolicy" else [],
        [],
        [obj] if kind == "AccountabilityException" else [],
    )
    assert len(ix.errors) == 1


def test_kubectl_explain_reads_the_models_descriptions(crds: ControlPlaneInfo) -> None:
    """`kubectl explain` serves each field's docstring from affidavit.policy.model."""
    code, out = kubectl(crds, "explain", "accountabilitypolicy.spec.require")
    assert code == 0, out
    text = " ".join(out.split())  # kubectl wraps descriptions at its own width
    assert "What the matched images must prove; omissions take secure defaults." in text
    assert "Trust tier name (from the repository's tier map; `*` = every tier)" in text
    assert "failurePolicy <string>" in text and "and Fail beats Ignore." in text
    code, out = kubectl(crds, "explain", "accountabilityexception.spec.approvers")
    assert code == 0, out
    assert "Who approved the waiver; never the owner." in " ".join(out.split())
    code, out = kubectl(crds, "explain", "regionpolicy.status.conditions.reason")
    assert code == 0, out
    assert "A CamelCase word for why, e.g. Invalid." in " ".join(out.split())
