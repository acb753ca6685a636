"""Tests ``kubectl affidavit`` (why, explain, exceptions, policy) against the real apiserver,
through its service proxy to the webhook, as a person with only a kubeconfig."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from decisions_e2e_support import REGISTRY, ProxiedCluster

from affidavit.envtest import wait_for
from affidavit.ledger import Ledger, LedgerRecord
from affidavit.policy import PolicyIndex
from affidavit.policy.decision import Decision
from affidavit.policy.explain import explain_decision, explain_policy

pytestmark = pytest.mark.e2e

PLUGIN = Path(sys.executable).parent / "kubectl-affidavit"
#: The suite's admin, as the API server names it (its client certificate's CN).
ADMIN_USER = "affidavit-admin"


def plugin(
    cluster: ProxiedCluster, *args: str, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``kubectl affidavit ARGS``: kubectl finds the plugin on PATH, as krew installs it."""
    env = {
        "PATH": f"{PLUGIN.parent}:/usr/bin:/bin",
        "KUBECONFIG": str(kubeconfig or cluster.kubeconfig),
    }
    return subprocess.run(
        [str(cluster.kubectl_bin), "affidavit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _full(records: list[LedgerRecord]) -> str:
    return (
        "\n\n".join(
            f"{explain_decision(Decision.from_dict(r.decision))}\nledger: seq {r.seq}, hash {r.hash}"
            for r in records
        )
        + "\n"
    )


def test_why_shows_the_denial_of_a_workload_that_never_came_to_exist(
    proxied: ProxiedCluster,
) -> None:
    decision_id = proxied.denied("payments")
    record = Ledger(proxied.ledger_url, read_only=True).get(decision_id)
    assert record is not None
    got = plugin(proxied, "why", "deploy/payments", "-n", "shop")
    assert (got.returncode, got.stderr) == (0, "")
    assert got.stdout == _full([record])


def test_why_covers_the_workload_and_what_its_controllers_made(proxied: ProxiedCluster) -> None:
    """An image no policy names is warned about and admitted; the Deployment's ReplicaSet and
    Pods are the workload's children: their decisions (if any) are shown with its own."""
    assert proxied.deploy("catalog", f"{REGISTRY}/other/catalog:1").returncode == 0
    pods: list[str] = []
    for _ in range(150):
        out = proxied.kubectl("get", "pods", "-n", "shop", "-l", "app=catalog", "-o", "name").stdout
        pods = [p.split("/", 1)[1] for p in out.split()]
        if pods:
            break
        time.sleep(0.2)
    assert pods, proxied.webhook.log_tail()
    (rs,) = proxied.kubectl(
        "get", "rs", "-n", "shop", "-l", "app=catalog", "-o", "name"
    ).stdout.split()
    rs_name = rs.split("/", 1)[1]
    uid = proxied.kubectl(
        "get", "rs", rs_name, "-n", "shop", "-o", "jsonpath={.metadata.uid}"
    ).stdout
    # A Pod of the ReplicaSet's with another image is judged on its own: a child with a row.
    extra = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "catalog-extra", "namespace": "shop", "labels": {"app": "catalog"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": rs_name, "uid": uid}]},
        "spec": {"containers": [{"name": "app", "image": f"{REGISTRY}/other/extra:1"}]},
    }  # fmt: skip
    proxied.apply(extra)
    pods.append("catalog-extra")
    workloads = {("Deployment", "catalog"), ("ReplicaSet", rs_name)} | {("Pod", p) for p in pods}
    ledger = Ledger(proxied.ledger_url, read_only=True)

    def recorded() -> list[LedgerRecord] | None:
        """The workload's rows once the extra Pod's is among them: on a loaded machine its
        decision may wait in the webhook's buffer past --ledger-wait, flushed just after."""
        rows = [
            r for r in ledger.query(namespace="shop", limit=None) if (r.kind, r.name) in workloads
        ]
        return rows if ("Pod", "catalog-extra") in {(r.kind, r.name) for r in rows} else None

    records: list[LedgerRecord] = wait_for(recorded, "the extra Pod's decision in the ledger", 60)
    assert (records[0].kind, records[0].outcome) == ("Deployment", "warned")
    got = plugin(proxied, "why", "deployment/catalog", "-n", "shop", "--limit", "20")
    assert (got.returncode, got.stderr) == (0, "")
    assert got.stdout == _full(list(reversed(records)))


def test_why_names_an_unknown_workload(proxied: ProxiedCluster) -> None:
    got = plugin(proxied, "why", "deploy/nothing-here", "-n", "shop")
    assert (got.returncode, got.stdout) == (2, "")
    assert got.stderr == (
        "error: no decision recorded for Deployment/nothing-here in namespace shop or what it "
        "created\n  hint: check the name and namespace (-n); a dry run is never recorded\n"
    )
    bad = plugin(proxied, "why", "checkout", "-n", "shop")
    assert (bad.returncode, bad.stderr) == (
        2,
        "error: 'checkout' is not TYPE/NAME of a workload\n"
        "  hint: for example deploy/checkout, sts/db, job/migrate or pod/checkout-7d9f-x2x\n",
    )


def test_explain_as_a_plugin_command(proxied: ProxiedCluster) -> None:
    decision_id = proxied.denied("ledgerless")
    record = Ledger(proxied.ledger_url, read_only=True).get(decision_id)
    assert record is not None
    got = plugin(proxied, "explain", decision_id, kubeconfig=proxied.reader("uma"))
    assert (got.returncode, got.stderr, got.stdout) == (0, "", _full([record]))


def test_the_key_holder_reads_a_decision_with_its_people_named(
    proxied: ProxiedCluster, tmp_path: Path
) -> None:
    """``--pseudonym-key`` with ``--people`` shows who a pseudonym in the record is; the record
    here names nobody, so the text is the plain one, and one option without the other is a
    usage error naming both."""
    decision_id = proxied.denied("pseudonyms")
    record = Ledger(proxied.ledger_url, read_only=True).get(decision_id)
    assert record is not None
    key = tmp_path / "pseudonym.key"
    key.write_text("k" * 64 + "\n")
    people = tmp_path / "people.txt"
    people.write_text("rita\n")
    for command in ("explain", "why"):
        target = decision_id if command == "explain" else "deploy/pseudonyms"
        extra = ("-n", "shop") if command == "why" else ()
        got = plugin(proxied, command, target, *extra, "--pseudonym-key", str(key),
                     "--people", str(people))  # fmt: skip
        assert (got.returncode, got.stderr, got.stdout) == (0, "", _full([record])), command
        half = plugin(proxied, command, target, *extra, "--people", str(people))
        assert half.returncode == 2, command
        assert "--people and --pseudonym-key go together" in half.stderr, command


def _exception(name: str, expires: datetime) -> dict[str, object]:
    return {
        "apiVersion": "affidavit.dev/v1alpha1", "kind": "AccountabilityException",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"images": [f"{REGISTRY}/acme/{name}*"], "reason": "incident hotfix",
                 "incidentId": f"INC-{name}", "owner": "rita", "approvers": ["sam"],
                 "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }  # fmt: skip


def test_exceptions_lists_the_active_and_the_expiring_soonest_first(
    proxied: ProxiedCluster,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    times = {"hotfix": now + timedelta(hours=3), "rollback": now + timedelta(days=5),
             "gone": now - timedelta(days=1)}  # fmt: skip
    for name, when in times.items():
        proxied.apply(_exception(name, when))
    stamp = {n: t.strftime("%Y-%m-%dT%H:%M:%SZ") for n, t in times.items()}
    got = plugin(proxied, "exceptions", "-n", "shop", kubeconfig=proxied.reader("vic"))
    assert (got.returncode, got.stderr) == (0, "")
    rows = [line.split() for line in got.stdout.splitlines()]
    assert rows[0] == [
        "NAMESPACE",
        "NAME",
        "STATE",
        "LEFT",
        "EXPIRES",
        "INCIDENT",
        "OWNER",
        "APPROVERS",
        "REQUESTED",
        "BY",
    ]
    assert [r[:3] + r[4:8] for r in rows[1:]] == [
        ["shop", "hotfix", "Expiring", stamp["hotfix"], "INC-hotfix", "rita", "sam"],
        ["shop", "rollback", "Active", stamp["rollback"], "INC-rollback", "rita", "sam"],
    ]
    # who applied them, as the API server named them (the webhook's stamp)
    assert {" ".join(r[8:]) for r in rows[1:]} == {ADMIN_USER}
    assert re.fullmatch(r"[0-2]h\d+m", rows[1][3]) and re.fullmatch(r"[45]d\d+h", rows[2][3])
    every = plugin(proxied, "exceptions", "-A", "--all")
    names = [line.split()[1:3] for line in every.stdout.splitlines()[1:]]
    assert names == [["gone", "Expired"], ["hotfix", "Expiring"], ["rollback", "Active"]]


def test_policy_for_an_image_is_the_webhooks_index_with_each_requirements_source(
    proxied: ProxiedCluster,
) -> None:
    proxied.denied("orders")  # a decision says which cluster and region the webhook judges in
    image = f"{REGISTRY}/acme/orders:2"
    index = PolicyIndex.from_objects([yaml.safe_load(proxied.policy_file.read_text())], [], [])
    labels = {"kubernetes.io/metadata.name": "shop"}
    eff = index.effective(cluster="shop-eu-1", region="eu-west-1", namespace="shop",
                          namespace_labels=labels, image=image)  # fmt: skip
    assert eff is not None
    reader = proxied.reader("wes")
    got = plugin(proxied, "policy", image, "-n", "shop", kubeconfig=reader)
    assert (got.returncode, got.stderr) == (0, "")
    assert got.stdout == (
        f"{image} in cluster shop-eu-1, region eu-west-1, namespace shop\n{explain_policy(eff)}\n"
    )
    listing = plugin(proxied, "policy", "-n", "shop", kubeconfig=reader)
    assert (listing.returncode, listing.stdout) == (0, (
        "Policies that apply in cluster shop-eu-1, region eu-west-1, namespace shop:\n"
        f"  AccountabilityPolicy/shop-baseline (Enforce): images {REGISTRY}/acme/*\n"
        "Give an IMAGE for its effective requirements and the source of each.\n"
    ))  # fmt: skip
