"""A burst of policy or exception edits is taken in few passes, not one pass each.

Anyone who may edit an exception in their namespace may edit it in a loop, and each edit is a
new policy index: a rewrite of its ConfigMap (up to 900 KiB), every webhook's re-parse and
emptied verdict cache, and a cluster-wide re-check. The operator now leaves at least
``min_pass_gap`` between passes; edits made meanwhile are all seen by the next pass.

Its own control plane (the reconciler here lists and writes cluster-wide, beside nothing else).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from operator_support import CRDS

from affidavit.envtest import ControlPlaneInfo
from affidavit.operator import kube
from affidavit.operator.handlers import Reconciler
from control_planes import started_control_plane

NS = "affidavit-burst"
EDITS = 6
GAP = 3.0
SPACING = 0.5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneInfo]:
    with started_control_plane(
        tmp_path_factory.mktemp("burst-cp"), with_controller_manager=False
    ) as info:
        run = [str(info.kubectl), f"--kubeconfig={info.kubeconfig}"]
        subprocess.run([*run, "apply", "--server-side", "-f", str(CRDS)], check=True,
                       capture_output=True)  # fmt: skip
        for crd in sorted(CRDS.glob("*.yaml")):
            subprocess.run([*run, "wait", "--for=condition=Established",
                            f"crd/{crd.name.removesuffix('.yaml')}", "--timeout=60s"],
                           check=True, capture_output=True)  # fmt: skip
        subprocess.run([*run, "create", "namespace", NS], check=True, capture_output=True)
        yield info


def _policy(mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "affidavit.dev/v1alpha1",
        "kind": "AccountabilityPolicy",
        "metadata": {"name": "burst"},
        "spec": {"mode": mode, "match": {"images": ["registry.example/burst/*"]}},
    }


def test_a_burst_of_edits_is_taken_in_few_passes(cluster: ControlPlaneInfo) -> None:
    """Passes start at least ``GAP`` apart however fast the edits come (a slow machine only
    spaces them more), and the last pass sees the last edit."""
    api = kube.connect(cluster.kubeconfig)
    custom = api.custom
    custom.create_cluster_custom_object("affidavit.dev", "v1alpha1", "accountabilitypolicies",
                                        _policy("Enforce"))  # fmt: skip
    reconciler = Reconciler(api=api, namespace=NS, min_pass_gap=GAP)
    starts: list[float] = []
    compiled = reconciler.reconcile_once

    def counted() -> Any:
        starts.append(time.monotonic())
        return compiled()

    reconciler.reconcile_once = counted  # type: ignore[method-assign]

    async def burst() -> list[float]:
        stop = asyncio.Event()
        task = asyncio.create_task(reconciler.run(stop))
        while not starts:
            await asyncio.sleep(0.05)
        await asyncio.sleep(GAP + 0.5)  # the first pass's gap is over: the next edit is seen
        before = len(starts)
        for i in range(EDITS):
            mode = ("Warn", "Enforce")[i % 2]
            await asyncio.to_thread(
                custom.patch_cluster_custom_object, "affidavit.dev", "v1alpha1",
                "accountabilitypolicies", "burst",
                {"spec": {"mode": mode, "match": {"images": [f"registry.example/burst/{i}"]}}},
            )  # fmt: skip
            reconciler.mark_dirty()  # as the operator's watch does on each event
            await asyncio.sleep(SPACING)  # without the gap, a pass runs between two edits
        await asyncio.sleep(GAP + 1.0)  # the pass after the last edit's gap
        stop.set()
        await task
        return starts[before - 1 :]

    try:
        passes = asyncio.run(burst())
        taken = len(passes) - 1
        assert 1 <= taken < EDITS, f"{taken} passes for {EDITS} edits"
        gaps = [later - earlier for earlier, later in itertools.pairwise(passes)]
        assert min(gaps) >= GAP * 0.99, gaps  # before: a pass for each edit, SPACING apart
        index, _ = _published(api)
        (policy,) = [p for p in index["policies"] if p["name"] == "burst"]
        assert policy["spec"]["match"]["images"] == [f"registry.example/burst/{EDITS - 1}"]
    finally:
        api.close()


def _published(api: kube.Kube) -> tuple[dict[str, Any], str]:
    cm = kube.read_configmap(api, NS, "affidavit-policy-index")
    assert cm is not None
    text = (cm.data or {})["index.json"]
    return json.loads(text), (cm.metadata.annotations or {}).get("affidavit.dev/index-digest", "")
