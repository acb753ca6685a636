"""Tests the README's demo command end to end: it must stay true after every change.

`affidavit demo` starts its own registry and control plane, releases two images, and must admit
the reviewed one and refuse the one with an AI change pushed after the approval.
"""

from __future__ import annotations

import re
from pathlib import Path

from affidavit.demo.run import run_demo
from affidavit.envtest import ControlPlaneInfo


def test_demo_admits_the_reviewed_release_and_refuses_the_other(
    control_plane: ControlPlaneInfo,  # binaries present (fails in CI, skips locally otherwise)
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    assert run_demo(lines.append, tmp_path / "demo") == 0
    text = "\n".join(lines)
    assert "  reviewed release admitted: True; unreviewed AI change refused: True" in text
    assert 'admission webhook "workloads.affidavit.dev" denied the request' in text
    assert "review.critical.independentApprovals (AccountabilityPolicy/payments-baseline)" in text
    assert (
        "     https://github.com/acme/payments-api/pull/42: 0 approvals on the final revision"
        in text
    )
    # the Deployment, the denial, and however many ReplicaSet/Pod admissions the controller
    # manager has made by then: the count varies, the chain's integrity must not
    assert re.search(r"^  chain: \d+ decisions checked, intact$", text, re.MULTILINE)
