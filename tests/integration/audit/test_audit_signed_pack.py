"""Signed evidence packs and reports (SQLite and PostgreSQL): ``audit pack --ledger-key`` signs
every file (DSSE, in-toto statement), ``audit verify-pack`` checks a pack offline and names what
was changed, and the README's stock-tool recipe (python one-liners + ``openssl pkeyutl``)
verifies the same signature without Affidavit."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from audit_decisions import fill, tamper

from affidavit.audit.pack import SIGNATURE_SPLIT, STATEMENT_CHECK
from affidavit.audit.signing import REPORT_PREDICATE, ledger_verifier, subjects, verify_statement
from affidavit.cli.main import main
from affidavit.ledger import Ledger

PERIOD = ["--since", "2026-03-01", "--until", "2026-04-01"]
OPENSSL_VERIFY = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "affidavit-ledger.pub"]


def _keys(folder: Path, name: str = "ledger") -> tuple[Path, Path]:
    prefix = folder / name
    assert main(["keygen", "--ledger-key", "--output", str(prefix)]) == 0
    return prefix.with_suffix(".key"), prefix.with_suffix(".pub")


def _pack(ledger_url: str, out: Path, key: Path) -> int:
    args = ["audit", "pack", "--ledger", ledger_url, *PERIOD, "-o", str(out)]
    return main([*args, "--ledger-key", str(key)])


def _rewrite(pack: Path, name: str, data: bytes) -> None:
    """Replace one file of the zip (what someone editing the pack would do)."""
    with zipfile.ZipFile(pack) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    files[name] = data
    with zipfile.ZipFile(pack, "w") as zf:
        for n, content in files.items():
            zf.writestr(n, content)


def test_a_signed_pack_verifies_offline_and_with_stock_tools(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(ledger)
    key, pub = _keys(tmp_path)
    pack = tmp_path / "evidence.zip"
    assert _pack(ledger_url, pack, key) == 0
    capsys.readouterr()
    assert main(["audit", "verify-pack", str(pack), "--ledger-public-key", str(pub)]) == 0
    assert capsys.readouterr().out == (
        f"evidence pack {pack}: signature verified with ledger.pub; 7 files match it; "
        "6 decisions (seq 2 to 7) hash and link; ledger verdict when packed: intact\n"
    )
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(pack) as zf:
        zf.extractall(folder)
    readme = (folder / "README.txt").read_text()
    assert f"python3 -c '{SIGNATURE_SPLIT}'" in readme
    assert f"python3 -c '{STATEMENT_CHECK}'" in readme
    shutil.copy(pub, folder / "affidavit-ledger.pub")
    subprocess.run([sys.executable, "-c", SIGNATURE_SPLIT], cwd=folder, check=True)
    openssl = subprocess.run(
        [*OPENSSL_VERIFY, "-rawin", "-in", "pae.bin", "-sigfile", "sig.bin"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert openssl.returncode == 0, openssl.stderr
    assert openssl.stdout.strip() == "Signature Verified Successfully"
    check = subprocess.run(
        [sys.executable, "-c", STATEMENT_CHECK], cwd=folder, capture_output=True, text=True
    )
    assert check.stdout.strip() == "all 7 files match the signed statement"
    statement = json.loads((folder / "statement.json").read_text())
    assert statement["predicateType"] == "https://affidavit.dev/audit/evidence-pack/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert (
        subjects["decisions.jsonl"]
        == hashlib.sha256((folder / "decisions.jsonl").read_bytes()).hexdigest()
    )


def test_verify_pack_names_an_edited_file_and_a_foreign_key(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(ledger)
    key, pub = _keys(tmp_path)
    _, other = _keys(tmp_path, "other")
    pack = tmp_path / "evidence.zip"
    assert _pack(ledger_url, pack, key) == 0
    capsys.readouterr()
    assert main(["audit", "verify-pack", str(pack), "--ledger-public-key", str(other)]) != 0
    err = capsys.readouterr().err
    assert f"evidence pack {pack}: the signature does not verify: no signature verified" in err
    _rewrite(pack, "report.md", b"# all good, trust me\n")
    assert main(["audit", "verify-pack", str(pack), "--ledger-public-key", str(pub)]) != 0
    assert capsys.readouterr().err.startswith(
        f"error: evidence pack {pack}: report.md does not match the sha256 the signature names "
        "(it was changed after signing)"
    )


def test_a_pack_of_a_broken_chain_names_the_row(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(ledger)
    tamper(ledger_url, 4)
    key, pub = _keys(tmp_path)
    pack = tmp_path / "evidence.zip"
    assert _pack(ledger_url, pack, key) != 0  # the pack is written, and the command says why
    capsys.readouterr()
    assert main(["audit", "verify-pack", str(pack), "--ledger-public-key", str(pub)]) != 0
    # the signature holds (the pack says what the ledger held), and the chain inside names the row
    assert capsys.readouterr().err.startswith(
        f"error: evidence pack {pack}: decisions.jsonl line 3: row seq 4 (decision d-004): the "
        "stored decision JSON does not match its hash (the row was edited)"
    )


def test_a_signed_report_verifies_with_the_ledger_key(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(ledger)
    key, pub = _keys(tmp_path)
    page = tmp_path / "report.html"
    args = ["audit", "report", "--ledger", ledger_url, *PERIOD, "--format", "html"]
    assert main([*args, "-o", str(page), "--ledger-key", str(key)]) == 0
    envelope = (tmp_path / "report.html.dsse.json").read_bytes()
    statement = verify_statement(envelope, ledger_verifier(pub), REPORT_PREDICATE, "report")
    assert subjects(statement) == {"report.html": hashlib.sha256(page.read_bytes()).hexdigest()}
    assert main([*args, "--ledger-key", str(key)]) == 2  # a signature needs a file to sign
    assert "--ledger-key signs the report file: give --output too" in capsys.readouterr().err


def _entry_data_offset(pack: Path, name: str) -> int:
    """Where an entry's (compressed) bytes start in the zip file."""
    with zipfile.ZipFile(pack) as zf:
        entry = zf.getinfo(name)
    raw = pack.read_bytes()
    name_len, extra_len = (
        int.from_bytes(raw[entry.header_offset + 26 : entry.header_offset + 28], "little"),
        int.from_bytes(raw[entry.header_offset + 28 : entry.header_offset + 30], "little"),
    )
    return entry.header_offset + 30 + name_len + extra_len


@pytest.mark.parametrize(
    ("name", "stored"),
    [("report.md", False), ("decisions.jsonl", False), ("report.html", True)],
    ids=["deflate-stream", "decisions", "crc"],
)
def test_a_pack_whose_zip_bytes_were_edited_is_refused_by_name(
    ledger: Ledger,
    ledger_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    stored: bool,
) -> None:
    """Editing a byte inside a compressed entry (a broken deflate stream) or a stored one (a bad
    CRC) made verify-pack end in zlib.error / BadZipFile with a stack trace."""
    fill(ledger)
    key, pub = _keys(tmp_path)
    pack = tmp_path / "evidence.zip"
    assert _pack(ledger_url, pack, key) == 0
    if stored:  # the same pack with this entry stored, as some zip tools write it
        with zipfile.ZipFile(pack) as zf:
            files = [(i, zf.read(i.filename)) for i in zf.infolist()]
        with zipfile.ZipFile(pack, "w") as zf:
            for info, data in files:
                info.compress_type = (
                    zipfile.ZIP_STORED if info.filename == name else info.compress_type
                )
                zf.writestr(info, data)
    raw = bytearray(pack.read_bytes())
    raw[_entry_data_offset(pack, name) + 5] ^= 0xFF
    pack.write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(["audit", "verify-pack", str(pack), "--ledger-public-key", str(pub)]) == 4
    err = capsys.readouterr().err
    assert err.startswith(f"error: evidence pack {pack}: {name} cannot be read from the zip (")
    assert "): it was changed after signing or damaged\n" in err


@pytest.mark.parametrize("forged_first", [True, False], ids=["forged-first", "forged-last"])
def test_a_pack_with_two_entries_of_one_name_is_refused(
    ledger: Ledger,
    ledger_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    forged_first: bool,
) -> None:
    """A second report.html beside the signed one: verify-pack hashed only the last entry of a
    name and passed, while an unzip tool that keeps the first (or asks, and is told "no") shows
    the auditor the forged page."""
    fill(ledger)
    key, pub = _keys(tmp_path)
    pack = tmp_path / "evidence.zip"
    assert _pack(ledger_url, pack, key) == 0
    with zipfile.ZipFile(pack) as zf:
        files = [(i, zf.read(i.filename)) for i in zf.infolist()]
    forged = (zipfile.ZipInfo("report.html"), b"<h1>Every AI change was reviewed</h1>")
    entries = [forged, *files] if forged_first else [*files, forged]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it writes
        with zipfile.ZipFile(pack, "w") as zf:
            for info, data in entries:
                zf.writestr(info, data)
    capsys.readouterr()
    assert main(["audit", "verify-pack", str(pack), "--ledger-public-key", str(pub)]) == 4
    assert capsys.readouterr().err == (
        f"error: evidence pack {pack}: the zip holds 2 entries named 'report.html'; unzip "
        "tools differ in which one they show\n"
        "  hint: ask for the pack again; keep its sha256 with the audit record\n"
    )


def test_an_unsigned_entry_name_cannot_forge_a_line(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An extra entry's name is shown escaped: a newline in it printed a forged line."""
    fill(ledger)
    key, pub = _keys(tmp_path)
    pack = tmp_path / "evidence.zip"
    assert _pack(ledger_url, pack, key) == 0
    with zipfile.ZipFile(pack, "a") as zf:
        zf.writestr("x\nevidence pack OK: signature verified", b"")
    capsys.readouterr()
    assert main(["audit", "verify-pack", str(pack), "--ledger-public-key", str(pub)]) == 4
    assert capsys.readouterr().err == (
        f"error: evidence pack {pack}: 'x\\nevidence pack OK: signature verified' is not in the "
        "signature\n"
    )


def test_an_oversized_signature_entry_is_refused_before_it_is_read(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGNATURE.dsse.json is read whole before anything is verified: a zip bomb there (64 MiB
    of spaces in 64 KiB here; zip64 declares up to 16 EiB) was inflated into memory before the
    envelope's 4 MiB limit was checked."""
    fill(ledger)
    key, pub = _keys(tmp_path)
    pack = tmp_path / "evidence.zip"
    assert _pack(ledger_url, pack, key) == 0
    with zipfile.ZipFile(pack) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    files["SIGNATURE.dsse.json"] = files["SIGNATURE.dsse.json"] + b" " * (64 << 20)
    with zipfile.ZipFile(pack, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, content in files.items():
            zf.writestr(n, content)
    assert pack.stat().st_size < 1 << 20
    capsys.readouterr()
    assert main(["audit", "verify-pack", str(pack), "--ledger-public-key", str(pub)]) == 4
    size = len(files["SIGNATURE.dsse.json"])
    assert capsys.readouterr().err == (
        f"error: evidence pack {pack}: SIGNATURE.dsse.json holds {size} bytes, more than the "
        "4194304 an envelope may hold\n"
        "  hint: ask for the pack again; keep its sha256 with the audit record\n"
    )
