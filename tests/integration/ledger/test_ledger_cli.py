"""`affidavit decisions list` and `affidavit decisions verify-chain` on a real SQLite ledger:
filters, JSON output, exit codes and the exact message naming a tampered row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ledger_decisions import make_decision
from sqlalchemy import create_engine, text

from affidavit.cli.main import main
from affidavit.ledger import Ledger


def test_list_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    led = Ledger(url)
    led.append(make_decision(did="d-a", namespace="a", time="2026-03-01T09:00:00Z"))
    led.append(make_decision(did="d-b", namespace="b", outcome="denied"))
    assert main(["decisions", "list", "--ledger", url, "--outcome", "denied"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    seq, when, outcome, workload, images, did = out[0].split("\t")
    assert when == "2026-03-01T10:00:00Z"
    assert (seq, outcome, did, images) == ("2", "denied", "d-b", "registry.example/shop/web:1.0")
    assert workload.startswith("b/Deployment/web-")
    assert main(["decisions", "list", "--ledger", url, "--json", "-n", "a"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["seq"] == 1 and line["decision"]["id"] == "d-a"

    assert main(["decisions", "verify-chain", "--ledger", url]) == 0
    assert capsys.readouterr().out == "ok: 2 decisions, chain intact up to seq 2\n"

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET decision = replace(decision, 'denied', 'allowed')"))
    engine.dispose()
    assert main(["decisions", "verify-chain", "--ledger", url]) == 6
    err = capsys.readouterr().err
    assert err.startswith(
        "error: ledger hash chain is broken at seq 2: the stored decision JSON does not match "
        "its hash (the row was edited) (1 decisions verified before it)\n  hint: "
    )


def test_bad_url_and_bad_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decisions", "list", "--ledger", "mysql://x/y"]) == 6
    assert "names an unsupported database 'mysql'" in capsys.readouterr().err
    url = f"sqlite:///{tmp_path / 'l.db'}"
    assert main(["decisions", "list", "--ledger", url, "--since", "yesterday"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: --since 'yesterday' is not a date or RFC 3339 time"
    )


def test_list_by_image_asks_for_the_canonical_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The webhook records canonical references, so a query in any spelling finds them."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    led = Ledger(url)
    led.append(make_decision(did="d-hub", image="docker.io/library/nginx:1.27"))
    led.append(make_decision(did="d-latest", image="docker.io/library/nginx:latest"))
    led.append(make_decision(did="d-other", image="registry.example/shop/web:1.0"))
    for query, found in [
        ("nginx", ["d-hub", "d-latest"]),  # no tag written: every tag and digest
        ("index.docker.io/library/nginx", ["d-hub", "d-latest"]),
        ("nginx:1.27", ["d-hub"]),
        ("DOCKER.IO/nginx:latest", ["d-latest"]),
        ("REGISTRY.EXAMPLE/shop/web", ["d-other"]),
    ]:
        assert main(["decisions", "list", "--ledger", url, "--image", query]) == 0
        ids = [line.split("\t")[-1] for line in capsys.readouterr().out.splitlines()]
        assert ids == found, query
