"""CLI: ``affidavit audit report`` and ``affidavit audit pack`` for auditors, legal and the CISO.

"Show me your governance over AI-generated code over this period, per region" is one command
over the decision ledger. Each decision carries a snapshot of its images' verified AI involvement
and of the exceptions it used, so the report needs no registry and no exception objects; for
rows recorded before snapshots, ``--key`` checks the images' provenance in the registry
now and ``--exceptions`` reads the exception objects. A broken
hash chain still produces the report (which says so at the top) and then exits non-zero.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from affidavit.attestations.evidence import ImageEvidence, KeySigner
from affidavit.attestations.reference import ImageReference
from affidavit.attestations.registry import RegistryClient
from affidavit.attestations.verify import verify_digest
from affidavit.cli.options import (
    CheckpointsOpt,
    ForceOpt,
    InsecureRegistryOpt,
    LedgerPublicKeyOpt,
    check_order,
    deprecated,
    refuse_overwrite,
)
from affidavit.cli.progress import progress
from affidavit.errors import AffidavitError, InputError, LedgerError, UsageError

if TYPE_CHECKING:  # the ledger (SQLAlchemy) and the report load with the commands that use them
    from affidavit.audit.report import ExceptionDetail
    from affidavit.ledger import Ledger

audit_app = typer.Typer(
    help="Coverage reports and evidence packs from the decision ledger.", no_args_is_help=True
)

LedgerOpt = Annotated[
    str,
    typer.Option(
        "--ledger",
        envvar="AFFIDAVIT_LEDGER",
        help="SQLAlchemy URL: sqlite:///PATH.db or postgresql+psycopg://USER@HOST:PORT/DB.",
    ),
]
RegionOpt = Annotated[str | None, typer.Option("--region", help="only this cluster region")]
ExceptionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--exceptions",
        help="for ledgers recorded before decision snapshots: YAML/JSON of "
        "AccountabilityException objects (kubectl get accountabilityexceptions -A -o yaml) for "
        "who approved each exception, why, incident and expiry (newer decisions record them)",
    ),
]
KeysOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--key",
        metavar="KEY",
        help="for decisions without a snapshot of their provenance (recorded before snapshots, or "
        "unattested then): trusted signer's public key (PEM) to verify each image's provenance "
        "in the registry now and count AI-touched workloads from evidence (repeatable)",
    ),
]
OldKeysOpt = Annotated[
    list[Path] | None,
    typer.Option("--public-key", hidden=True, help="Deprecated: use --key."),
]
LedgerKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--ledger-key",
        envvar="AFFIDAVIT_LEDGER_KEY",
        help="Ed25519 ledger key (PEM, affidavit keygen --ledger-key): sign what is written "
        "(DSSE, verifiable with its public key and stock tools).",
    ),
]


def _time(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise UsageError(
            f"{flag} {value!r} is not a date or an RFC 3339 time",
            hint=f"for example {flag} 2026-01-01 or {flag} 2026-01-01T00:00:00Z",
        ) from e
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _required(value: str, flag: str) -> datetime:
    parsed = _time(value, flag)
    if parsed is None:  # typer enforces the option; kept for the type checker
        raise UsageError(f"{flag} is required")
    return parsed


def _exceptions(path: Path | None) -> dict[str, ExceptionDetail] | None:
    from affidavit.audit.report import exception_details

    if path is None:
        return None
    hint = "pass the output of kubectl get accountabilityexceptions -A -o yaml"

    def refuse(problem: str) -> InputError:
        return InputError(f"cannot read exceptions from {path}: {problem}", hint=hint)

    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except UnicodeDecodeError as e:
        raise refuse("it is not UTF-8 text") from e
    except (OSError, yaml.YAMLError) as e:
        raise refuse(str(e)) from e
    objects: list[dict[str, Any]] = []
    for doc in docs:
        if doc is not None and not isinstance(doc, dict):
            raise refuse("a document is not an object or a List")
        items = doc.get("items") if isinstance(doc, dict) and "items" in doc else [doc]
        if items is not None and not isinstance(items, list):
            raise refuse("'items' is not a list")
        objects += [o for o in items or [] if isinstance(o, dict)]
    return exception_details(objects)


def _ai_touched(
    led: Ledger,
    start: datetime | None,
    end: datetime | None,
    keys: list[Path] | None,
    insecure: list[str] | None,
) -> dict[str, bool] | None:
    """Provenance verified now, for images the decisions' snapshots leave undetermined (rows
    recorded before snapshots); reads the period (only with --key)."""
    if not keys:
        return None
    from affidavit.audit.report import ai_touched_from_evidence
    from affidavit.policy.decision import Decision

    records = led.query(since=start, until=end, limit=None)
    signers = []
    for path in keys:
        try:
            signers.append(KeySigner(name=path.stem, public_key_pem=path.read_text()))
        except OSError as e:
            raise InputError(f"cannot read public key {path}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise InputError(
                f"public key {path} is not a PEM public key (not text)",
                hint="pass the signers' .pub files (--key), as `affidavit verify` takes them",
            ) from e
    images: dict[str, str] = {}
    for rec in records:
        try:
            decision = Decision.from_dict(rec.decision)
        except (TypeError, KeyError, ValueError):
            continue  # the report lists it as unreadable
        snapshot = decision.snapshot
        for image in decision.images:
            seen = snapshot.image(image.ref) if snapshot is not None else None
            if seen is not None and seen.ai_touched is not None:
                continue  # settled at decision time: no registry lookup
            if image.digest:
                images.setdefault(image.digest, image.ref)
    evidence: list[ImageEvidence] = []
    from affidavit.attestations.docker_config import DockerCredentials

    with RegistryClient(insecure_hosts=insecure or (), credentials=DockerCredentials()) as client:
        for digest, ref in sorted(images.items()):
            try:
                target = ImageReference.parse(ref).with_digest(digest)
                evidence.append(verify_digest(client, target, signers))
            except AffidavitError:
                continue  # no verified evidence: counted as undetermined
    return ai_touched_from_evidence(evidence)


def _keys(key: list[Path] | None, old: list[Path] | None) -> list[Path] | None:
    if old:
        deprecated("--public-key", "use --key, as `affidavit verify` and `trace` do")
    return [*(key or []), *(old or [])] or None


def _generated_at() -> datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` (reproducible builds' convention) for a byte-identical pack."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC)
        except ValueError as e:
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds") from e
    return datetime.now(UTC)


def _refuse_broken(report: dict[str, Any]) -> None:
    if report["verdict"] == "intact":
        return
    integrity = report["integrity"]
    where = (
        f"the ledger hash chain is broken at seq {integrity['firstBrokenSeq']}: "
        f"{integrity['reason']}"
        if not integrity["ok"]
        else f"ledger rows at seq {integrity['unreadableSeqs']} are not readable decisions"
    )
    raise LedgerError(
        f"{where}; the report says so and presents no clean bill",
        hint="restore the ledger from a backup, run `affidavit decisions verify-chain`, and "
        "investigate who had write access to the database",
    )


@audit_app.command("report", short_help="Coverage report over a period (JSON, Markdown, HTML).")
def report(
    ledger: LedgerOpt,
    since: Annotated[
        str | None, typer.Option("--since", help="RFC 3339 or date, inclusive")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="RFC 3339 or date, exclusive")
    ] = None,
    region: RegionOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="json | markdown | html")] = "markdown",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file (default: stdout)")
    ] = None,
    exceptions: ExceptionsOpt = None,
    key: KeysOpt = None,
    insecure_registry: InsecureRegistryOpt = None,
    ledger_public_key: LedgerPublicKeyOpt = None,
    checkpoints: CheckpointsOpt = None,
    ledger_key: LedgerKeyOpt = None,
    force: ForceOpt = False,
    old_public_key: OldKeysOpt = None,
) -> None:
    """Coverage over a period: outcomes per region/cluster/namespace, evidence, AI-touched
    workloads, exceptions, top violated rules and controls, and the hash-chain verdict."""
    from affidavit.audit.render import RENDERERS
    from affidavit.audit.report import report_from_ledger
    from affidavit.audit.signing import REPORT_PREDICATE, ledger_signer, sign_files
    from affidavit.ledger import Ledger
    from affidavit.ledger.checkpoint import load_checkpoints

    if fmt not in RENDERERS:
        raise UsageError(
            f"--format {fmt!r} is not one of json, markdown, html", hint="use --format html"
        )
    start, end = _time(since, "--since"), _time(until, "--until")
    check_order(start, end)
    signed = load_checkpoints(ledger_public_key, checkpoints)
    led = Ledger(ledger, read_only=True)
    if ledger_key is not None and output is None:
        raise UsageError(
            "--ledger-key signs the report file: give --output too",
            hint="the signature is written beside it as OUTPUT.dsse.json",
        )
    if output is not None:
        signature = [output.with_name(output.name + ".dsse.json")] if ledger_key else []
        refuse_overwrite(force, output, *signature)
    signer = ledger_signer(ledger_key) if ledger_key is not None else None
    touched = _ai_touched(led, start, end, _keys(key, old_public_key), insecure_registry)
    with progress("verifying the ledger", "decisions") as report_progress:
        doc = report_from_ledger(
            led,
            since=start,
            until=end,
            region=region,
            exceptions=_exceptions(exceptions),
            ai_touched=touched,
            checkpoints=signed,
            generated_at=_generated_at(),
            ledger_url=led.url,
            progress=report_progress,
        )
    text = RENDERERS[fmt](doc)
    if output is None:
        typer.echo(text, nl=False)
    else:
        data = text.encode()
        try:
            output.write_bytes(data)
            if signer is not None:
                envelope = sign_files(
                    {output.name: hashlib.sha256(data).hexdigest()},
                    REPORT_PREDICATE,
                    {"period": doc["period"], "integrity": doc["integrity"]},
                    signer,
                )
                output.with_name(output.name + ".dsse.json").write_bytes(envelope)
        except OSError as e:
            raise UsageError(f"cannot write the report to {output}: {e.strerror or e}") from e
        typer.echo(f"wrote {fmt} report to {output}", err=True)
    _refuse_broken(doc)


@audit_app.command("pack", short_help="Write a deterministic evidence pack (.zip).")
def pack(
    ledger: LedgerOpt,
    since: Annotated[str, typer.Option("--since", help="RFC 3339 or date, inclusive")],
    until: Annotated[str, typer.Option("--until", help="RFC 3339 or date, exclusive")],
    output: Annotated[Path, typer.Option("--output", "-o", help="the .zip to write")],
    region: RegionOpt = None,
    exceptions: ExceptionsOpt = None,
    key: KeysOpt = None,
    insecure_registry: InsecureRegistryOpt = None,
    ledger_public_key: LedgerPublicKeyOpt = None,
    checkpoints: CheckpointsOpt = None,
    ledger_key: LedgerKeyOpt = None,
    force: ForceOpt = False,
    old_public_key: OldKeysOpt = None,
) -> None:
    """A deterministic evidence pack (.zip): report in three formats, the period's ledger rows
    as stored, MANIFEST.json, SHA256SUMS and a README on verifying them with standard tools."""
    from affidavit.audit.pack import build_pack, check_period
    from affidavit.audit.signing import ledger_signer
    from affidavit.ledger import Ledger
    from affidavit.ledger.checkpoint import load_checkpoints

    start, end = _required(since, "--since"), _required(until, "--until")
    check_period(start, end)
    refuse_overwrite(force, output)
    signed = load_checkpoints(ledger_public_key, checkpoints)
    led = Ledger(ledger, read_only=True)
    touched = _ai_touched(led, start, end, _keys(key, old_public_key), insecure_registry)
    with progress("packing the ledger", "decisions") as pack_progress:
        digest, doc = build_pack(
            led,
            output,
            since=start,
            until=end,
            region=region,
            exceptions=_exceptions(exceptions),
            ai_touched=touched,
            checkpoints=signed,
            signer=ledger_signer(ledger_key) if ledger_key is not None else None,
            generated_at=_generated_at(),
            ledger_url=led.url,
            progress=pack_progress,
        )
    typer.echo(f"wrote evidence pack {output} (sha256 {digest}, verdict: {doc['verdict']})")
    _refuse_broken(doc)


@audit_app.command("verify-pack", short_help="Check an evidence pack offline.")
def verify_pack_cmd(
    pack_file: Annotated[Path, typer.Argument(help="the evidence pack (.zip)")],
    ledger_public_key: Annotated[
        Path,
        typer.Option(
            "--ledger-public-key",
            envvar="AFFIDAVIT_LEDGER_PUBLIC_KEY",
            help="Ed25519 public key (PEM) of the ledger key that signed the pack.",
        ),
    ],
) -> None:
    """Check an evidence pack offline: its signature, every file's sha256, the hash chain of
    its decisions, and the chain verdict recorded when it was made."""
    from affidavit.audit.signing import ledger_verifier
    from affidavit.audit.verify_pack import verify_pack

    check = verify_pack(pack_file, ledger_verifier(ledger_public_key))
    typer.echo(
        f"evidence pack {pack_file}: signature verified with {ledger_public_key.name}; "
        f"{check.files} files match it; {check.decisions} decisions (seq {check.first_seq} to "
        f"{check.last_seq}) hash and link; ledger verdict when packed: {check.verdict}"
    )
    if check.verdict != "intact":
        raise LedgerError(
            f"evidence pack {pack_file} is authentic but records a ledger whose chain was "
            f"{check.verdict} when it was packed; its figures are not a clean bill",
            hint="read the report's headline inside the pack",
        )


def register(root: typer.Typer) -> None:
    """Add ``audit`` to the root app."""
    root.add_typer(audit_app, name="audit")
