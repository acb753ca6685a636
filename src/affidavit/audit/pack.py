"""The evidence pack: one file an auditor can take away and check without trusting Affidavit.

It holds the coverage report (JSON, Markdown, HTML), the period's decisions exactly as the ledger
stores them (seq, prev_hash, hash and the canonical JSON the hash covers), a MANIFEST.json and a
SHA256SUMS file with the sha256 of every file, with ``--ledger-key`` a DSSE signature over all of
them, and a README.txt that shows how to re-verify signature, files and hash chain with openssl,
``sha256sum`` and Python one-liners. It is written as the ledger streams (one pass, the rows go
straight into the zip), so a million decisions need no more memory than a thousand. The zip is
deterministic: fixed entry order, timestamps and permissions, so the same ledger, period and
generation time give the same bytes (and the same pack hash).
"""

from __future__ import annotations

import hashlib
import json
import textwrap
import zipfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from affidavit.attestations.keys import PrivateKeySigner
from affidavit.audit.parallel import PARALLEL_FROM, SINGLE_PASS, SplitFailed
from affidavit.audit.render import render_html, render_json, render_markdown
from affidavit.audit.report import ExceptionDetail, report_from_ledger
from affidavit.audit.signing import PACK_PREDICATE, sha256_file, sign_files
from affidavit.audit.stretch import DECISIONS, Stretch, info
from affidavit.errors import UsageError
from affidavit.ledger import GENESIS_HASH, Ledger
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


#: Writes the DSSE pre-authentication encoding, the signature and the signed statement of
#: SIGNATURE.dsse.json to files openssl reads (README.txt shows it).
SIGNATURE_SPLIT = (
    "import json,base64;"
    'E=json.load(open("SIGNATURE.dsse.json"));P=base64.b64decode(E["payload"]);'
    'T=E["payloadType"].encode();'
    'open("pae.bin","wb").write(b"DSSEv1 %d %s %d %s"%(len(T),T,len(P),P));'
    'open("sig.bin","wb").write(base64.b64decode(E["signatures"][0]["sig"]));'
    'open("statement.json","wb").write(P)'
)
#: Checks every file against the signed statement's subjects.
STATEMENT_CHECK = (
    "import json,hashlib,os;"
    'S={s["name"]:s["digest"]["sha256"] for s in json.load(open("statement.json"))["subject"]};'
    'B=[n for n,h in S.items() if hashlib.sha256(open(n,"rb").read()).hexdigest()!=h];'
    'print("MISMATCH:",B) if B else print("all",len(S),"files match the signed statement")'
)


def _signed_steps() -> list[str]:
    return [
        "0. Check the signature (the ledger's Ed25519 public key, affidavit-ledger.pub, the one",
        "   that signs the ledger's checkpoints), or run: affidavit audit verify-pack PACK.zip",
        "   --ledger-public-key affidavit-ledger.pub",
        "",
        f"   python3 -c '{SIGNATURE_SPLIT}'",
        "   openssl pkeyutl -verify -pubin -inkey affidavit-ledger.pub -rawin -in pae.bin \\",
        "       -sigfile sig.bin",
        f"   python3 -c '{STATEMENT_CHECK}'",
        "",
        "   openssl prints 'Signature Verified Successfully'; the statement's subjects are every",
        "   other file of the pack with its sha256.",
        "",
    ]


def _readme(manifest: Mapping[str, Any], *, signed: bool = False) -> str:
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
            *(
                [
                    "SIGNATURE.dsse.json  DSSE envelope, signed with the ledger key, of an in-toto",
                    "                  statement naming every other file by its sha256",
                ]
                if signed
                else []
            ),
            "",
            *(_signed_steps() if signed else []),
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
            "3. Keep the sha256 of this zip file with the audit record; the same ledger, period",
            "   and generation time always produce a byte-identical pack.",
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


SIGNATURE = "SIGNATURE.dsse.json"


def build_pack(
    ledger: Ledger,
    path: Path,
    *,
    since: datetime,
    until: datetime,
    region: str | None = None,
    exceptions: Mapping[str, ExceptionDetail] | None = None,
    ai_touched: Mapping[str, bool] | None = None,
    checkpoints: Sequence[Checkpoint] = (),
    signer: PrivateKeySigner | None = None,
    generated_at: datetime | None = None,
    ledger_url: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    parallel_from: int = PARALLEL_FROM,
) -> tuple[str, dict[str, Any]]:
    """Write the pack for decisions in ``[since, until)`` to ``path`` (atomically, streaming);
    return its sha256 and its report document. From ``parallel_from`` decisions the pass is
    split over two processes; should the split fail, the pack is written again in one pass."""
    check_period(since, until)
    tmp = path.with_name(path.name + ".tmp")
    stamp = _zip_time(until)
    state: dict[str, Any] = {}

    try:
        state["zf"] = zipfile.ZipFile(tmp, "w", compresslevel=1)
        state["stretch"] = Stretch(state["zf"], stamp)
        report = report_from_ledger(
            ledger,
            since=since,
            until=until,
            region=region,
            exceptions=exceptions,
            ai_touched=ai_touched,
            checkpoints=checkpoints,
            lines=state["stretch"],
            generated_at=generated_at,
            ledger_url=ledger_url,
            progress=progress,
            parallel_from=parallel_from,
        )
        zf: zipfile.ZipFile = state["zf"]
        stretch: Stretch = state["stretch"]
        digests = {DECISIONS: stretch.close()}
        first, last = stretch.ends()
        files: dict[str, bytes] = {
            "report.json": render_json(report).encode(),
            "report.md": render_markdown(report).encode(),
            "report.html": render_html(report).encode(),
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
                "count": stretch.count,
                "firstSeq": first["seq"] if first else None,
                "lastSeq": last["seq"] if last else None,
                "firstPrevHash": first["prev_hash"] if first else None,
                "lastHash": last["hash"] if last else None,
            },
        }
        digests |= {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
        files["README.txt"] = _readme(manifest, signed=signer is not None).encode()
        digests["README.txt"] = hashlib.sha256(files["README.txt"]).hexdigest()
        manifest["files"] = dict(sorted(digests.items()))
        files["SHA256SUMS"] = "".join(f"{h}  {n}\n" for n, h in manifest["files"].items()).encode()
        files["MANIFEST.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        if signer is not None:
            every = {**digests, **{n: hashlib.sha256(files[n]).hexdigest() for n in files}}
            files[SIGNATURE] = sign_files(every, PACK_PREDICATE, _predicate(manifest), signer)
        for name in sorted(files):
            zf.writestr(info(name, stamp), files[name], compresslevel=9)
        zf.close()
        tmp.replace(path)
    except SplitFailed:  # some rows are already in the zip: start again, in one pass
        state["stretch"].abandon()
        state["zf"].close()
        tmp.unlink(missing_ok=True)
        state["retry"] = {
            "ledger": ledger,
            "path": path,
            "since": since,
            "until": until,
            "region": region,
            "exceptions": exceptions,
            "ai_touched": ai_touched,
            "checkpoints": checkpoints,
            "signer": signer,
            "generated_at": generated_at,
            "ledger_url": ledger_url,
            "progress": progress,
            "parallel_from": SINGLE_PASS,
        }
    except OSError as e:
        raise UsageError(
            f"cannot write the evidence pack to {path}: {e.strerror or e}",
            hint="choose an --output path in a writable folder",
        ) from e
    finally:
        if "zf" in state:
            if "stretch" in state and not state["stretch"].out.closed:
                state["stretch"].abandon()  # an error ended the pack: keep it, not the close's
            state["zf"].close()
        tmp.unlink(missing_ok=True)
    if "retry" in state:
        return build_pack(**state["retry"])
    return sha256_file(path), report


def _predicate(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return {k: manifest[k] for k in ("schema", "period", "ledger", "decisions")}
