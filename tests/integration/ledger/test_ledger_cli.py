"""`affidavit decisions list` and `affidavit decisions verify-chain` on a real SQLite ledger:
filters, JSON output, exit codes and the exact message naming a tampered row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ledger_decisions import make_decision
from sqlalchemy import create_engine, inspect, text

from affidavit.cli.main import main
from affidavit.ledger import Ledger
from affidavit.ledger.checkpoint import Checkpointer, CheckpointTrail, load_private_key


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
        "error: ledger hash chain is broken at seq 2: row seq 2 (decision d-b): the stored "
        "decision JSON does not match its hash (the row was edited) (1 decision verified "
        "before it)\n  hint: "
    )


def test_list_names_rows_that_are_no_readable_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an edited row printed "?" (or "decision": {} as JSON), exit 0, with nothing on stderr
    url = f"sqlite:///{tmp_path / 'l.db'}"
    led = Ledger(url)
    for n in range(3):
        led.append(make_decision(did=f"d-{n}"))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text('UPDATE decisions SET decision = \'{"not": "a decision"}\' WHERE seq = 2')
        )
    engine.dispose()
    for extra in ([], ["--json"]):
        assert main(["decisions", "list", "--ledger", url, *extra]) == 0
        out, err = capsys.readouterr()
        assert len(out.splitlines()) == 3
        assert err == (
            "(1 listed row(s) are not readable decisions, seq 2: the ledger may have been"
            " edited; `affidavit decisions verify-chain` says where)\n"
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


_NO_LEDGER = "  hint: check the --ledger path; reading commands never create a ledger\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["decisions", "list"],
        ["decisions", "verify-chain"],
        ["audit", "report"],
        ["audit", "pack", "--since", "2026-01-01", "--until", "2026-02-01", "-o", "p.zip"],
        ["explain", "--decision", "d-1"],
    ],
)
def test_reading_commands_never_create_a_ledger(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.db"
    assert main([*argv, "--ledger", f"sqlite:///{missing}"]) == 6
    assert capsys.readouterr().err == (
        f"error: ledger database {missing} does not exist\n{_NO_LEDGER}"
    )
    assert not missing.exists()


def test_verify_chain_reports_a_damaged_schema_and_does_not_repair_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger(url).append(make_decision())
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE decision_images"))
    assert main(["decisions", "verify-chain", "--ledger", url]) == 6
    assert capsys.readouterr().err == (
        f"error: ledger database {url} has a damaged schema: table decision_images is missing\n"
        "  hint: Affidavit does not repair a ledger; restore it from a backup and investigate "
        "who had write access to the database\n"
    )
    with engine.connect() as conn:
        assert "decision_images" not in inspect(conn).get_table_names()
    engine.dispose()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert main(["decisions", "verify-chain", "--ledger", f"sqlite:///{empty}"]) == 6
    assert capsys.readouterr().err == (
        f"error: ledger database sqlite:///{empty} holds no ledger (no decisions table)\n"
        "  hint: check the --ledger URL; reading commands never create a ledger\n"
    )
    assert empty.read_bytes() == b""


def test_verify_chain_and_report_check_signed_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "ledger-key"
    assert main(["keygen", "--ledger-key", "--output", str(prefix)]) == 0
    capsys.readouterr()
    trail = CheckpointTrail(tmp_path / "checkpoints")
    signer = Checkpointer(
        load_private_key(tmp_path / "ledger-key.key"), trail, origin="test", every=2
    )
    url = f"sqlite:///{tmp_path / 'l.db'}"
    led = Ledger(url, checkpointer=signer)
    recs = [led.append(make_decision()) for _ in range(3)]
    flags = ["--ledger", url, "--ledger-public-key", f"{prefix}.pub", "--checkpoints"]
    assert main(["decisions", "verify-chain", *flags, str(trail.directory)]) == 0
    assert capsys.readouterr().out == (
        "ok: 3 decisions, chain intact up to seq 3, consistent with the signed checkpoint "
        "at size 2\n"
    )
    assert main(["audit", "report", *flags, str(trail.directory)]) == 0
    assert (
        f"Ledger head: seq 3, hash {recs[2].hash}; 3 rows verified. Checked against the signed "
        "checkpoint at size 2." in capsys.readouterr().out
    )
    assert main(["decisions", "verify-chain", "--ledger", url, "--checkpoints", "x"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: --ledger-public-key and --checkpoints go together\n"
    )

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_images WHERE seq >= 2"))
        conn.execute(text("DELETE FROM decisions WHERE seq >= 2"))
        conn.execute(text("UPDATE ledger_head SET seq = 1, hash = :h"), {"h": recs[0].hash})
    engine.dispose()
    assert main(["decisions", "verify-chain", "--ledger", url]) == 0  # the chain alone: fine
    capsys.readouterr()
    truncation = (
        f"checkpoint {trail.directory}/checkpoint.0000000000000002 signs size 2 but the ledger "
        "ends at seq 1: decisions 2..2 were removed and the head rewound (truncation)"
    )
    assert main(["decisions", "verify-chain", *flags, str(trail.directory)]) == 6
    assert capsys.readouterr().err.startswith(
        f"error: ledger hash chain is broken at seq 2: {truncation} (1 decision verified before "
        "it)\n"
    )
    assert main(["audit", "report", "--format", "json", *flags, str(trail.directory)]) == 6
    doc = json.loads(capsys.readouterr().out)
    assert (doc["verdict"], doc["integrity"]["reason"]) == ("chain-broken", truncation)


def test_a_list_cut_at_its_limit_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    led = Ledger(url)
    for n in range(3):
        led.append(make_decision(did=f"d-{n}"))
    assert main(["decisions", "list", "--ledger", url, "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    assert [line.split("\t")[-1] for line in out.splitlines()] == ["d-0", "d-1"]
    assert err == (
        "(the first 2 shown; more decisions match: raise --limit, or narrow with --since, "
        "--until, --namespace, --outcome or --image)\n"
    )
    assert main(["decisions", "list", "--ledger", url, "--limit", "3"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["decisions", "list", "--ledger", url, "--limit", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --limit 0 lists nothing")
