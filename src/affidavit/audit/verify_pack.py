"""Checking an evidence pack offline: what ``affidavit audit verify-pack`` does.

An auditor receives a zip months later, far from the cluster and its database. Everything needed
is inside it or in the ledger's public key: the DSSE signature (made with the ledger key) over a
statement naming every file by sha256, the files themselves, and decisions.jsonl, the stretch of
the hash chain the report was computed from. Each row must hash to its stored hash, link to the
previous one, carry columns that agree with its hashed JSON (the ledger's own rule,
:func:`affidavit.ledger.records.check_row`), and the stretch must begin and end where the signed
manifest says. The first fault is named; the pack's own chain verdict is reported too.
"""

from __future__ import annotations

import json
import lzma
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affidavit.attestations.dsse import MAX_ENVELOPE_BYTES
from affidavit.attestations.keys import Verifier
from affidavit.audit.signing import PACK_PREDICATE, subjects, verify_statement
from affidavit.errors import InputError, VerificationError
from affidavit.ledger.records import check_row, images_of, parse_time, record_from_row

SIGNATURE = "SIGNATURE.dsse.json"
DECISIONS = "decisions.jsonl"
#: SIGNATURE's size limit: the largest envelope parse_envelope accepts anyway
_MAX_SIGNATURE = MAX_ENVELOPE_BYTES

#: What reading an entry whose bytes were edited raises: a bad CRC, a broken deflate stream, a
#: truncated entry, a compression method or encryption zipfile does not read.
_DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
)


_AGAIN = "ask for the pack again; keep its sha256 with the audit record"


def _damaged(path: Path, name: str, e: Exception) -> VerificationError:
    return VerificationError(
        f"evidence pack {path}: {name} cannot be read from the zip ({e}): it was changed "
        "after signing or damaged",
        hint=_AGAIN,
    )


def _shown(name: str) -> str:
    """An entry name from the zip, quoted and escaped: a newline in it cannot forge a line."""
    return repr(name)


@dataclass(frozen=True)
class PackCheck:
    files: int
    decisions: int
    first_seq: int | None
    last_seq: int | None
    verdict: str  # the ledger's verdict when the pack was made
    period: dict[str, Any]


def verify_pack(path: Path, verifier: Verifier) -> PackCheck:
    """Check signature, files and the chain inside; raise ``VerificationError`` naming the fault."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise InputError(f"cannot open evidence pack {path}: {e}") from e
    with zf:
        listed = zf.namelist()
        names = set(listed)
        if len(names) != len(listed):  # zipfile reads the last entry of a name; others the first
            twice = next(n for n in listed if listed.count(n) > 1)
            raise VerificationError(
                f"evidence pack {path}: the zip holds {listed.count(twice)} entries named "
                f"{_shown(twice)}; unzip tools differ in which one they show",
                hint=_AGAIN,
            )
        if SIGNATURE not in names:
            raise VerificationError(
                f"evidence pack {path} is not signed (no {SIGNATURE})",
                hint="make packs with `affidavit audit pack --ledger-key KEY`",
            )
        size = zf.getinfo(SIGNATURE).file_size
        if size > _MAX_SIGNATURE:  # read whole before anything is verified: no zip bomb
            raise VerificationError(
                f"evidence pack {path}: {SIGNATURE} holds {size} bytes, more than the "
                f"{_MAX_SIGNATURE} an envelope may hold",
                hint=_AGAIN,
            )
        try:
            envelope = zf.read(SIGNATURE)
        except _DAMAGED as e:
            raise _damaged(path, SIGNATURE, e) from e
        statement = verify_statement(envelope, verifier, PACK_PREDICATE, f"evidence pack {path}")
        signed = subjects(statement)
        unsigned = sorted(names - set(signed) - {SIGNATURE})
        if unsigned:
            raise VerificationError(
                f"evidence pack {path}: {_shown(unsigned[0])} is not in the signature"
            )
        for name, digest in sorted(signed.items()):
            if name not in names:
                raise VerificationError(f"evidence pack {path}: signed file {name} is missing")
            if _sha256(zf, path, name) != digest:
                raise VerificationError(
                    f"evidence pack {path}: {name} does not match the sha256 the signature names "
                    "(it was changed after signing)"
                )
        if DECISIONS not in signed:
            raise VerificationError(f"evidence pack {path}: the signature names no {DECISIONS}")
        predicate = statement.get("predicate") or {}
        stretch = predicate.get("decisions") or {}
        count, first, last = _check_chain(zf, path, stretch)
    return PackCheck(
        files=len(signed),
        decisions=count,
        first_seq=first,
        last_seq=last,
        verdict=str((predicate.get("ledger") or {}).get("verdict")),
        period=dict(predicate.get("period") or {}),
    )


def _sha256(zf: zipfile.ZipFile, path: Path, name: str) -> str:
    import hashlib

    h = hashlib.sha256()
    try:
        with zf.open(name) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except _DAMAGED as e:
        raise _damaged(path, name, e) from e
    return h.hexdigest()


def _check_chain(
    zf: zipfile.ZipFile, path: Path, stretch: dict[str, Any]
) -> tuple[int, int | None, int | None]:
    expected_prev = stretch.get("firstPrevHash")
    expected_seq = stretch.get("firstSeq")
    count = 0
    first = last = None
    with zf.open(DECISIONS) as f:
        for number, raw in enumerate(f, 1):
            where = f"evidence pack {path}: {DECISIONS} line {number}"
            try:
                line = json.loads(raw)
                row = {**line, "time": parse_time(str(line["time"]))}
                rec = record_from_row(row)
            except (ValueError, KeyError, TypeError, RecursionError) as e:
                raise VerificationError(f"{where} is not a ledger row: {e}") from e
            problem = check_row(
                rec,
                int(expected_seq if expected_seq is not None else rec.seq),
                str(expected_prev if expected_prev is not None else rec.prev_hash),
                images_of(rec.decision),
            )
            if problem is not None:
                raise VerificationError(f"{where}: {problem}")
            expected_prev, expected_seq = rec.hash, rec.seq + 1
            count += 1
            first = rec.seq if first is None else first
            last = rec.seq
    if count != (stretch.get("count") or 0) or last != stretch.get("lastSeq"):
        raise VerificationError(
            f"evidence pack {path}: {DECISIONS} holds {count} rows ending at seq {last}, the "
            f"signed manifest says {stretch.get('count')} ending at seq {stretch.get('lastSeq')}"
        )
    if count and expected_prev != stretch.get("lastHash"):
        raise VerificationError(
            f"evidence pack {path}: the last row's hash is not the signed lastHash"
        )
    return count, first, last
