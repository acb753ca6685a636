"""Tests the decisions API through the kube-apiserver's service proxy: a refused release
manager reads the full record from a laptop with only a kubeconfig, as RBAC allows."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest
from decisions_e2e_support import IP, PORT, SERVICE, SYSTEM, ProxiedCluster

from affidavit.cli.main import main
from affidavit.ledger import Ledger
from affidavit.policy.decision import Decision
from affidavit.policy.explain import explain_decision

pytestmark = pytest.mark.e2e


def test_explain_reads_a_denial_through_the_service_proxy_with_a_kubeconfig(
    proxied: ProxiedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    decision_id = proxied.denied("checkout")
    rita = proxied.reader("rita")
    record = Ledger(proxied.ledger_url, read_only=True).get(decision_id)
    assert record is not None
    expected = explain_decision(Decision.from_dict(record.decision))
    capsys.readouterr()

    argv = ["explain", "--decision", decision_id, "--kubeconfig", str(rita),
            "--service", f"{SYSTEM}/{SERVICE}"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out == f"{expected}\nledger: seq {record.seq}, hash {record.hash}\n"

    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "seq": record.seq, "hash": record.hash, "decision": record.decision,
    }  # fmt: skip


def test_without_the_reader_role_the_apiserver_refuses_and_the_cli_says_which_role(
    proxied: ProxiedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    decision_id = proxied.denied("basket")
    sam = proxied.user("sam")
    capsys.readouterr()
    assert main(["explain", "--decision", decision_id, "--kubeconfig", str(sam)]) == 7
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: you may not read decisions through the Service {SYSTEM}/{SERVICE}: "
        'services "https:affidavit:https" is forbidden: User "system:serviceaccount:team:sam" '
        'cannot get resource "services/proxy" in API group "" in the namespace "affidavit-system"'
    ), err
    assert err.endswith(
        "  hint: ask for the ClusterRole affidavit-decision-reader (`kubectl create "
        "clusterrolebinding NAME --clusterrole affidavit-decision-reader --user YOU`)\n"
    ), err


def test_an_unknown_decision_is_named(
    proxied: ProxiedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["explain", "--decision", "no-such-id", "--kubeconfig", str(proxied.kubeconfig)]) == 2
    )
    assert capsys.readouterr().err == (
        "error: decision no-such-id is not in this webhook's ledger (it may still be buffered, "
        "or recorded by another cluster's webhook)\n"
    )


def test_validate_still_demands_the_apiservers_certificate_while_decisions_are_read_only(
    proxied: ProxiedCluster,
) -> None:
    """The proxy presents no client certificate, so /decisions is open on the port (read-only);
    /validate keeps refusing anyone but the kube-apiserver. Asked from inside the namespace."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def call(method: str, path: str) -> int:
        req = urllib.request.Request(f"https://{IP}:{PORT}{path}", method=method,
                                     data=b"{}" if method == "POST" else None)  # fmt: skip
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    ns = proxied.namespaces
    assert ns.call(call, "POST", "/validate") == 401
    assert ns.call(call, "GET", "/decisions?namespace=shop") == 200
    assert ns.call(call, "POST", "/decisions") == 405
