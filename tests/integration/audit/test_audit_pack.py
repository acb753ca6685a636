"""The evidence pack and the `affidavit audit` CLI over a real ledger: the pack's files verify
with sha256sum and the README's own one-liners, the chain re-verifies from decisions.jsonl
alone (and shows a tampered row), the same inputs give byte-identical packs, and a broken chain
makes both commands exit non-zero with an exact diagnostic."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_decisions import EXCEPTION_OBJECT, SINCE, UNTIL, fill, tamper
from sqlalchemy import create_engine, text

from affidavit.audit.pack import CHAIN_CHECK, MANIFEST_CHECK, build_pack
from affidavit.audit.parallel import SINGLE_PASS
from affidavit.cli.main import main
from affidavit.errors import LedgerError
from affidavit.ledger import GENESIS_HASH, Ledger

AT = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)


def _pack(ledger: Ledger, folder: Path, **kw: Any) -> tuple[bytes, dict[str, Any]]:
    path = folder / f"pack-{len(list(folder.glob('pack-*.zip')))}.zip"
    digest, report = build_pack(ledger, path, since=SINCE, until=UNTIL, generated_at=AT, **kw)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == digest
    return data, report


def _unpack(data: bytes, into: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(into)
    return into


def _run(code: str, cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_pack_contents_verify_with_standard_tools(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger)
    data, report = _pack(ledger, tmp_path)
    folder = _unpack(data, tmp_path / "pack")
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "MANIFEST.json",
        "README.txt",
        "SHA256SUMS",
        "decisions.jsonl",
        "report.html",
        "report.json",
        "report.md",
    ]
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    assert sorted(manifest["files"]) == sorted(set(names) - {"MANIFEST.json", "SHA256SUMS"})
    # the period's decisions are seq 2..7; the pack holds exactly that stretch of the chain
    assert manifest["decisions"] == {
        "count": 6,
        "firstSeq": 2,
        "lastSeq": 7,
        "firstPrevHash": ledger.query(limit=1)[0].hash,
        "lastHash": ledger.query(limit=None)[6].hash,
    }
    assert manifest["ledger"]["verdict"] == "intact"
    rows = [json.loads(line) for line in (folder / "decisions.jsonl").read_text().splitlines()]
    stored = ledger.query(since=SINCE, until=UNTIL, limit=None)
    assert [(r["seq"], r["decision"], r["prev_hash"], r["hash"]) for r in rows] == [
        (s.seq, s.canonical, s.prev_hash, s.hash) for s in stored
    ]
    assert json.loads((folder / "report.json").read_text()) == report
    readme = (folder / "README.txt").read_text()
    assert f"python3 -c '{CHAIN_CHECK}'" in readme
    assert f"python3 -c '{MANIFEST_CHECK}'" in readme
    assert _run(MANIFEST_CHECK, folder) == "manifest ok: 5 files"
    assert _run(CHAIN_CHECK, folder) == (
        f"chain intact: 6 decisions, seq 2 to 7 first prev_hash {rows[0]['prev_hash']} "
        f"last hash {rows[-1]['hash']}"
    )
    if shutil.which("sha256sum"):
        check = subprocess.run(
            ["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    # an edited file is caught by the manifest check
    (folder / "report.md").write_text("all good, trust me\n")
    assert _run(MANIFEST_CHECK, folder) == "MISMATCH: ['report.md']"


def test_pack_is_byte_identical_for_the_same_inputs(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger)
    first, _ = _pack(ledger, tmp_path)
    second, _ = _pack(ledger, tmp_path)
    assert first == second
    other, _ = _pack(ledger, tmp_path, region="us-east-1")
    assert other != first


def test_tampered_row_shows_in_the_pack(ledger: Ledger, ledger_url: str, tmp_path: Path) -> None:
    fill(ledger)
    tamper(ledger_url, 4)
    data, report = _pack(ledger, tmp_path)
    folder = _unpack(data, tmp_path / "pack")
    assert report["verdict"] == "chain-broken"
    assert json.loads((folder / "MANIFEST.json").read_text())["ledger"]["firstBrokenSeq"] == 4
    assert _run(CHAIN_CHECK, folder) == "chain BROKEN at seq 4"
    assert "NOT A CLEAN BILL" in (folder / "report.md").read_text()


@pytest.mark.parametrize("parallel_from", [SINGLE_PASS, 2], ids=["single", "split"])
def test_a_decision_stored_as_a_blob_is_packed_as_its_text_on_sqlite(
    tmp_path: Path, parallel_from: int
) -> None:
    """SQLite keeps a BLOB in a TEXT column (a row rewritten by another client). Bytes that are
    the hashed text are the same decision: the pack is the one the text gives, not a crash.
    Text that is not UTF-8 (which SQLite stores as given) is named, and no pack is left."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    fill(ledger)
    clean, _ = _pack(ledger, tmp_path, parallel_from=parallel_from)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET decision = CAST(decision AS BLOB) WHERE seq < 4"))
        stored = conn.execute(text("SELECT typeof(decision) FROM decisions WHERE seq = 2")).one()
        assert stored == ("blob",)
    same, report = _pack(ledger, tmp_path, parallel_from=parallel_from)
    assert report["verdict"] == "intact"
    assert same == clean
    with engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET decision = decision || x'ff' WHERE seq = 5"))
    engine.dispose()
    target = tmp_path / "broken.zip"
    with pytest.raises(LedgerError, match="holds a value that is not UTF-8 text"):
        build_pack(ledger, target, since=SINCE, until=UNTIL, parallel_from=parallel_from)
    ledger.close()
    assert not target.exists()
    assert not target.with_name(target.name + ".tmp").exists()


def test_cli_report_and_pack(
    ledger: Ledger,
    ledger_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(AT.timestamp())))
    fill(ledger)
    exc = tmp_path / "exceptions.yaml"
    exc.write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [EXCEPTION_OBJECT]})
    )
    args = ["audit", "report", "--ledger", ledger_url, "--since", "2026-03-01"]
    args += ["--until", "2026-04-01T00:00:00Z", "--format", "json", "--exceptions", str(exc)]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"]["decisions"] == 6
    assert doc["exceptions"][0]["incidentId"] == "INC-42"

    page = tmp_path / "report.html"
    assert main([*args[:-4], "--region", "eu-west-1", "--format", "html", "-o", str(page)]) == 0
    assert capsys.readouterr().err == f"wrote html report to {page}\n"
    assert "<td>eu-west-1</td>" in page.read_text()
    assert "us-east-1" not in page.read_text()

    packs = [tmp_path / "a.zip", tmp_path / "b.zip"]
    for out in packs:
        pack_args = ["audit", "pack", "--ledger", ledger_url, "--since", "2026-03-01"]
        assert main([*pack_args, "--until", "2026-04-01", "--output", str(out)]) == 0
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        assert capsys.readouterr().out == (
            f"wrote evidence pack {out} (sha256 {digest}, verdict: intact)\n"
        )
    assert packs[0].read_bytes() == packs[1].read_bytes()
    manifest = json.loads(zipfile.ZipFile(packs[0]).read("MANIFEST.json"))
    assert manifest["decisions"]["firstPrevHash"] != GENESIS_HASH


def test_cli_exits_non_zero_on_a_broken_chain(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(ledger)
    tamper(ledger_url, 4)
    assert main(["audit", "report", "--ledger", ledger_url, "--format", "markdown"]) == 6
    out, err = capsys.readouterr()
    assert "WARNING: NOT A CLEAN BILL" in out
    did = ledger.after(3, 1)[0].id
    assert err == (
        f"error: the ledger hash chain is broken at seq 4: row seq 4 (decision {did}): the "
        "stored decision JSON does not match its hash (the row was edited); the report says so "
        "and presents no clean bill\n"
        "  hint: restore the ledger from a backup, run `affidavit decisions verify-chain`, and "
        "investigate who had write access to the database\n"
    )
    out_zip = tmp_path / "p.zip"
    pack_args = ["audit", "pack", "--ledger", ledger_url, "--since", "2026-03-01"]
    assert main([*pack_args, "--until", "2026-04-01", "-o", str(out_zip)]) == 6
    assert "verdict: chain-broken" in capsys.readouterr().out
    assert out_zip.exists()


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    assert main(["audit", "report", "--ledger", url, "--format", "pdf"]) == 2
    assert capsys.readouterr().err == (
        "error: --format 'pdf' is not one of json, markdown, html\n  hint: use --format html\n"
    )
    assert main(["audit", "report", "--ledger", url, "--since", "last week"]) == 2
    assert capsys.readouterr().err == (
        "error: --since 'last week' is not a date or an RFC 3339 time\n"
        "  hint: for example --since 2026-01-01 or --since 2026-01-01T00:00:00Z\n"
    )
    pack_args = ["audit", "pack", "--ledger", url, "--since", "2026-04-01", "--until"]
    assert main([*pack_args, "2026-03-01", "-o", str(tmp_path / "p.zip")]) == 2
    assert capsys.readouterr().err == (
        "error: the period is empty: --since 2026-04-01T00:00:00+00:00 is not before --until "
        "2026-03-01T00:00:00+00:00\n  hint: give --since an earlier time than --until\n"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe items", "it is not UTF-8 text"),
        (b"items: 5\n", "'items' is not a list"),
        (b"[1, 2]\n", "a document is not an object or a List"),
    ],
    ids=["not-utf8", "items-not-a-list", "a-list"],
)
def test_a_malformed_exceptions_file_is_an_input_error(
    ledger: Ledger,
    ledger_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    problem: str,
) -> None:
    """A file that is not UTF-8 ended in UnicodeDecodeError, 'items: 5' in TypeError."""
    fill(ledger)
    exc = tmp_path / "exceptions.yaml"
    exc.write_bytes(content)
    args = ["audit", "report", "--ledger", ledger_url, "--since", "2026-03-01"]
    assert main([*args, "--until", "2026-04-01", "--exceptions", str(exc)]) == 2
    assert capsys.readouterr().err == (
        f"error: cannot read exceptions from {exc}: {problem}\n"
        "  hint: pass the output of kubectl get accountabilityexceptions -A -o yaml\n"
    )
