"""The evidence pack: one file an auditor can take away and check without trusting Affidavit.

It holds the coverage report (JSON, Markdown, HTML), the period's decisions exactly as the ledger
stores them (seq, prev_hash, hash and the canonical JSON the hash covers), a MANIFEST.json and a
SHA256SUMS file with the sha256 of every file, and a README.txt that shows how to re-verify the
manifest and the hash chain with ``sha256sum`` and a Python one-liner. The zip is deterministic:
fixed entry order, timestamps and permissions, no wall-clock time inside, so the same ledger and
period always give the same bytes (and the same pack hash).
"""

from __future__ import annotations

import hashlib
import io
import json
import textwrap
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from affidavit.audit.render import render_html, render_json, render_markdown
from affidavit.audit.report import ExceptionDetail, report_from_ledger
from affidavit.errors import UsageError
from affidavit.ledger import GENESIS_HASH, Ledger, LedgerRecord
from affidavit.ledger.checkpoint import Checkpoint

PACK_SCHEMA = "https://affidavit.dev/audit/evidence-pack/v1"

#: Checks every row's hash, every link and the seq order of decisions.jsonl (README.txt shows it).
CHAIN_CHECK = (
    "import json,hashlib;"
    'R=[json.loads(l) for l in open("decisions.jsonl",encoding="utf-8")];'
    'B=[r["seq"] for i,r in enumerate(R) if hashlib.sha256((r["prev_hash"]+r["decision"])'
    '.encode()).hexdigest()!=r["hash"] or (i>0 and (r["prev_hash"]!=R[i-1]["hash"] '
    'or r["seq"]!=R[i-1]["seq"]+1))];'
    'print("chain BROKEN at seq",B[0]) if B else print("chain intact:",len(R),"decisions, seq",'
    'R[0]["seq"],"to",R[-1]["seq"],"first prev_hash",R[0]["prev_hash"],"last hash",R[-1]["hash"])'
    ' if R else print("no decisions in this pack")'
)

MANIFEST_CHECK = (
    "import json,hashlib;"
    'M=json.load(open("MANIFEST.json"));'
    'B=[n for n,h in M["files"].items() if hashlib.sha256(open(n,"rb").read()).hexdigest()!=h];'
    'print("MISMATCH:",B) if B else print("manifest ok:",len(M["files"]),"files")'
)


def _stored_line(rec: LedgerRecord) -> str:
    row = {
        "seq": rec.seq,
        "id": rec.id,
        "time": rec.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "outcome": rec.outcome,
        "namespace": rec.namespace,
        "kind": rec.kind,
        "name": rec.name,
        "decision": rec.canonical,
        "prev_hash": rec.prev_hash,
        "hash": rec.hash,
    }
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def _readme(manifest: Mapping[str, Any]) -> str:
    d = manifest["decisions"]
    if d["count"]:
        first = d["firstSeq"]
        link = (
            "the genesis value 000...0 (it is the first decision ever recorded)"
            if d["firstPrevHash"] == GENESIS_HASH
            else f"the hash of seq {first - 1} (the last row of the previous period's pack)"
        )
        scope = (
            f"decisions.jsonl holds every ledger row from seq {first} to seq {d['lastSeq']} "
            f"({d['count']} rows), the unbroken stretch of the chain that contains the "
            "period's decisions. The report counts only those inside the period"
            + (" and region" if manifest["period"]["region"] else "")
            + f". The first row's prev_hash must equal {link}."
        )
    else:
        scope = "No decision was recorded in this period; decisions.jsonl is empty."
    return "\n".join(
        [
            "Affidavit evidence pack",
            "=======================",
            "",
            f"Period: {manifest['period']['since']} (inclusive) to "
            f"{manifest['period']['until']} (exclusive); region: "
            f"{manifest['period']['region'] or 'all'}.",
            f"Ledger at packing time: head seq {manifest['ledger']['headSeq']}, head hash "
            f"{manifest['ledger']['headHash']}; chain verdict: {manifest['ledger']['verdict']}.",
            "",
            "Files",
            "-----",
            "report.json / report.md / report.html  the coverage report (same figures, three forms)",
            "decisions.jsonl   one ledger row per line, exactly as stored: seq, prev_hash, hash and",
            "                  'decision', the canonical JSON text the hash covers",
            "MANIFEST.json     sha256 of every file above, the period and the ledger head",
            "SHA256SUMS        the same sha256 values in the format sha256sum reads",
            "",
            "1. Check that no file was changed (run inside the unpacked folder):",
            "",
            "   sha256sum -c SHA256SUMS",
            "",
            "   or, without coreutils:",
            "",
            f"   python3 -c '{MANIFEST_CHECK}'",
            "",
            "2. Re-verify the hash chain independently. Each row's hash is",
            "   sha256(prev_hash + decision) in lowercase hex (UTF-8 bytes of the two strings",
            "   concatenated), and each row's prev_hash is the previous row's hash:",
            "",
            f"   python3 -c '{CHAIN_CHECK}'",
            "",
            textwrap.fill(scope, width=92, initial_indent="   ", subsequent_indent="   "),
            "",
            "3. Keep the sha256 of this zip file with the audit record; the same ledger and",
            "   period always produce a byte-identical pack.",
            "",
        ]
    )


def _zip_time(until: datetime) -> tuple[int, int, int, int, int, int]:
    t = max(until.astimezone(UTC), datetime(1980, 1, 1, tzinfo=UTC))
    return (t.year, t.month, t.day, t.hour, t.minute, t.second - t.second % 2)


def check_period(since: datetime, until: datetime) -> None:
    """Refuse an empty period (before any database is opened)."""
    if since >= until:
        raise UsageError(
            f"the period is empty: --since {since.isoformat()} is not before --until "
            f"{until.isoformat()}",
            hint="give --since an earlier time than --until",
        )


def build_pack(
    ledger: Ledger,
    *,
    since: datetime,
    until: datetime,
    region: str | None = None,
    exceptions: Mapping[str, ExceptionDetail] | None = None,
    ai_touched: Mapping[str, bool] | None = None,
    checkpoints: Sequence[Checkpoint] = (),
) -> tuple[bytes, dict[str, Any]]:
    """The pack's zip bytes and its report document, for decisions in ``[since, until)``."""
    check_period(since, until)
    period = ledger.query(since=since, until=until, limit=None)
    report = report_from_ledger(
        ledger,
        since=since,
        until=until,
        region=region,
        exceptions=exceptions,
        ai_touched=ai_touched,
        records=period,
        checkpoints=checkpoints,
    )
    stretch: Sequence[LedgerRecord] = ()
    if period:
        first, last = period[0].seq, period[-1].seq
        contiguous = last - first + 1 == len(period)  # the usual case: no re-read needed
        stretch = period if contiguous else ledger.after(first - 1, limit=last - first + 1)
    files: dict[str, bytes] = {
        "report.json": render_json(report).encode(),
        "report.md": render_markdown(report).encode(),
        "report.html": render_html(report).encode(),
        "decisions.jsonl": "".join(_stored_line(r) for r in stretch).encode(),
    }
    integrity = report["integrity"]
    manifest: dict[str, Any] = {
        "schema": PACK_SCHEMA,
        "period": report["period"],
        "ledger": {
            "headSeq": integrity["headSeq"],
            "headHash": integrity["headHash"],
            "verdict": report["verdict"],
            "firstBrokenSeq": integrity["firstBrokenSeq"],
            "checkpointSize": integrity["checkpointSize"],
        },
        "decisions": {
            "count": len(stretch),
            "firstSeq": stretch[0].seq if stretch else None,
            "lastSeq": stretch[-1].seq if stretch else None,
            "firstPrevHash": stretch[0].prev_hash if stretch else None,
            "lastHash": stretch[-1].hash if stretch else None,
        },
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items())},
    }
    files["README.txt"] = _readme(manifest).encode()
    manifest["files"]["README.txt"] = hashlib.sha256(files["README.txt"]).hexdigest()
    manifest["files"] = dict(sorted(manifest["files"].items()))
    files["SHA256SUMS"] = "".join(f"{h}  {n}\n" for n, h in manifest["files"].items()).encode()
    files["MANIFEST.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    buf = io.BytesIO()
    stamp = _zip_time(until)
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, files[name], compresslevel=9)
    return buf.getvalue(), report


def write_pack(path: Path, data: bytes) -> str:
    """Write the pack (atomically) and return its sha256."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as e:
        raise UsageError(
            f"cannot write the evidence pack to {path}: {e.strerror or e}",
            hint="choose an --output path in a writable folder",
        ) from e
    return hashlib.sha256(data).hexdigest()
