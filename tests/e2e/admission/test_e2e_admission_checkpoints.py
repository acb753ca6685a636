"""Signed ledger checkpoints from a webhook with the chart's identity, on a real control plane.

The webhook runs as the chart's ServiceAccount (its RBAC rendered with
``ledger.signingKey.existingSecret`` set, a TokenRequest token) with the options the chart gives
it: an Ed25519 ledger key made by ``affidavit keygen --ledger-key``, a checkpoint directory and
the ConfigMap ``RELEASE-ledger-checkpoints`` of its namespace, here a checkpoint per decision.
A workload deployed through the apiserver is judged and its decision signed into that ConfigMap
(which the webhook creates, then patches); an auditor dumps it with kubectl and `affidavit
decisions verify-chain` checks the ledger against it with the public key, also after the head
was rewound behind the webhook's back.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from admission_e2e_support import (
    Releases,
    apply_and_sync,
    deployment,
    latest,
    policy,
    running_stack,
)
from chart_identity import chart_webhook_kubeconfig, delete_chart_rbac
from sqlalchemy import create_engine, text

from affidavit.demo.stack import ClusterStack
from affidavit.envtest import ControlPlaneInfo, wait_for
from affidavit.ledger import Ledger

SYSTEM = "affidavit-e2e-checkpoints"
NS = "adm-checkpoints"
POLICY = "adm-checkpoints-baseline"
TRAIL = f"{SYSTEM}-ledger-checkpoints"  # the chart's default name for release SYSTEM


def _affidavit(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "affidavit.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("ledger-key") / "affidavit-ledger"
    made = _affidavit("keygen", "--ledger-key", "--output", prefix)
    assert made.returncode == 0, made.stderr
    return prefix


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlaneInfo,
    releases: Releases,
    keys: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterStack]:
    work: Path = tmp_path_factory.mktemp("admission-checkpoints")
    identity = chart_webhook_kubeconfig(
        control_plane, SYSTEM, work, "ledger.signingKey.existingSecret=affidavit-ledger-key"
    )
    args = [
        "--ledger-key", str(keys.with_suffix(".key")),
        "--checkpoint-dir", str(work / "checkpoints"),
        "--checkpoint-every", "1",
        "--checkpoint-configmap", f"{SYSTEM}/{TRAIL}",
    ]  # fmt: skip
    try:
        with running_stack(
            control_plane,
            releases.registry_host,
            work,
            SYSTEM,
            webhook_kubeconfig=identity,
            webhook_args=args,
        ) as running:
            running.kubectl("create", "namespace", NS)
            apply_and_sync(running, policy(POLICY, releases.registry_host, releases.public_pem))
            try:
                yield running
            finally:
                running.kubectl("delete", "accountabilitypolicy", POLICY, "--ignore-not-found")
                running.kubectl("delete", "namespace", NS, "--wait=false", "--ignore-not-found")
    finally:
        delete_chart_rbac(control_plane, SYSTEM)


def test_decisions_are_signed_into_the_configmap_trail_the_chart_grants(
    stack: ClusterStack, releases: Releases, keys: Path, tmp_path: Path
) -> None:
    for name in ("signed-1", "signed-2"):
        stack.apply(deployment(name, NS, releases.reviewed.image))
        assert latest(stack, NS, "Deployment", name).outcome == "allowed"
    # Stopped, so the head stays put (the controllers' ReplicaSets are refused meanwhile).
    assert stack.webhook is not None
    stack.webhook.stop()
    ledger = Ledger(stack.ledger_url, read_only=True)
    head = ledger.head()[0]
    ledger.close()

    def trail() -> str | None:
        proc = stack.kubectl("get", "configmap", TRAIL, "-n", SYSTEM, "-o", "yaml", check=False)
        done = proc.returncode == 0 and f"checkpoint.{head:016d}" in proc.stdout
        return proc.stdout if done else None

    dumped = tmp_path / "checkpoints.yaml"
    dumped.write_text(wait_for(trail, f"checkpoint {head} in ConfigMap {SYSTEM}/{TRAIL}"))
    flags: list[str | Path] = ["--ledger", stack.ledger_url]
    flags += ["--ledger-public-key", keys.with_suffix(".pub"), "--checkpoints", dumped]
    ok = _affidavit("decisions", "verify-chain", *flags)
    assert (ok.returncode, ok.stdout) == (
        0,
        f"ok: {head} decisions, chain intact up to seq {head}, consistent with the signed "
        f"checkpoint at size {head}\n",
    )

    # Someone with the database's credentials removes the last decision and rewinds the head.
    engine = create_engine(stack.ledger_url)
    with engine.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM decisions WHERE seq = :s"), {"s": head - 1})
        conn.execute(text("DELETE FROM decision_images WHERE seq = :s"), {"s": head})
        conn.execute(text("DELETE FROM decisions WHERE seq = :s"), {"s": head})
        conn.execute(
            text("UPDATE ledger_head SET seq = :s, hash = :h"),
            {"s": head - 1, "h": prev.scalar_one()},
        )
    engine.dispose()
    rewound = _affidavit("decisions", "verify-chain", *flags)
    assert rewound.returncode == 6
    assert rewound.stderr.startswith(
        f"error: ledger hash chain is broken at seq {head}: checkpoint {dumped}:"
        f"checkpoint.{head:016d} signs size {head} but the ledger ends at seq {head - 1}: "
        f"decisions {head}..{head} were removed and the head rewound (truncation)"
    )
