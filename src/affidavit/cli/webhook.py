"""CLI: ``affidavit webhook serve`` runs the admission webhook; ``affidavit decisions`` reads the ledger.

Every flag has an ``AFFIDAVIT_*`` environment variable so the Helm chart can configure the pod
without a long argument list. Errors are raised, never printed: the root app maps them to exit
codes.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from affidavit import defaults
from affidavit.attestations.reference import ImageReference
from affidavit.cli.options import (
    OUTCOMES,
    BudgetSecondsOpt,
    CheckpointsOpt,
    InsecureRegistryOpt,
    LedgerPublicKeyOpt,
    RegistryAllowedHostOpt,
    RegistryCaOpt,
    UnmatchedImagesOpt,
    check_order,
)
from affidavit.errors import LedgerError, UsageError

if TYPE_CHECKING:  # the ledger (SQLAlchemy) is imported by the commands that read it
    from affidavit.ledger import LedgerRecord

webhook_app = typer.Typer(help="Run the admission webhook.", no_args_is_help=True)
decisions_app = typer.Typer(help="Read and verify the decision ledger.", no_args_is_help=True)

LedgerOpt = Annotated[
    str,
    typer.Option(
        "--ledger",
        envvar="AFFIDAVIT_LEDGER",
        help="SQLAlchemy URL: sqlite:///PATH.db or postgresql+psycopg://USER@HOST:PORT/DB.",
    ),
]


#: The most ``decisions list`` prints (beyond, SQLite's integers overflow; and a terminal).
MAX_LIST_LIMIT = 1_000_000_000


@webhook_app.command("serve", short_help="Serve AdmissionReviews over HTTPS at /validate.")
def serve(
    tls_cert: Annotated[Path, typer.Option("--tls-cert", envvar="AFFIDAVIT_TLS_CERT")],
    tls_key: Annotated[Path, typer.Option("--tls-key", envvar="AFFIDAVIT_TLS_KEY")],
    cluster_name: Annotated[str, typer.Option("--cluster-name", envvar="AFFIDAVIT_CLUSTER_NAME")],
    region: Annotated[str, typer.Option("--region", envvar="AFFIDAVIT_REGION")],
    port: Annotated[int, typer.Option("--port", envvar="AFFIDAVIT_PORT")] = 8443,
    host: Annotated[str, typer.Option("--host", envvar="AFFIDAVIT_HOST")] = "0.0.0.0",  # noqa: S104
    ledger: Annotated[
        str, typer.Option("--ledger", envvar="AFFIDAVIT_LEDGER", help="Ledger URL ('' = none).")
    ] = defaults.LEDGER_URL,
    policy_dir: Annotated[
        Path | None, typer.Option("--policy-dir", envvar="AFFIDAVIT_POLICY_DIR")
    ] = None,
    policy_configmap: Annotated[
        str | None,
        typer.Option(
            "--policy-configmap", envvar="AFFIDAVIT_POLICY_CONFIGMAP", help="NAMESPACE/NAME"
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", envvar="AFFIDAVIT_KUBECONFIG")
    ] = None,
    budget_seconds: BudgetSecondsOpt = defaults.BUDGET_SECONDS,
    insecure_registry: InsecureRegistryOpt = None,
    registry_ca: RegistryCaOpt = None,
    registry_allowed_host: RegistryAllowedHostOpt = None,
    registry_timeout: Annotated[
        float | None,
        typer.Option(
            "--registry-timeout",
            envvar="AFFIDAVIT_REGISTRY_TIMEOUT",
            help="Seconds after which a silent registry is unavailable (default 0.6 x budget).",
        ),
    ] = None,
    owner_check_seconds: Annotated[
        float,
        typer.Option(
            "--owner-check-seconds",
            envvar="AFFIDAVIT_OWNER_CHECK_SECONDS",
            help="Seconds a review waits for the API server to show a child's owner (at most "
            "half the budget left); past it the child (a Pod, a ReplicaSet) is judged alone.",
        ),
    ] = defaults.OWNER_CHECK_SECONDS,
    max_images_per_request: Annotated[
        int,
        typer.Option(
            "--max-images-per-request",
            envvar="AFFIDAVIT_MAX_IMAGES_PER_REQUEST",
            help="Distinct images judged per request; a request with more is denied.",
        ),
    ] = defaults.MAX_IMAGES_PER_REQUEST,
    evidence_ttl_seconds: Annotated[
        float,
        typer.Option(
            "--evidence-ttl-seconds",
            envvar="AFFIDAVIT_EVIDENCE_TTL_SECONDS",
            help="Re-verify an image's attestations after this long (a newer one may be there).",
        ),
    ] = 300.0,
    evidence_cache_mib: Annotated[
        int,
        typer.Option(
            "--evidence-cache-mib",
            envvar="AFFIDAVIT_EVIDENCE_CACHE_MIB",
            min=1,
            help="Packed predicates (MiB, compressed JSON) the evidence cache keeps; about 1.2x "
            "this in memory (see the chart's webhook.evidenceCacheMiB).",
        ),
    ] = 48,
    exception_max_days: Annotated[
        int,
        typer.Option(
            "--exception-max-days",
            envvar="AFFIDAVIT_EXCEPTION_MAX_DAYS",
            help="Longest AccountabilityException (days) with --policy-dir; with the operator's "
            "ConfigMap, the operator's setting applies.",
        ),
    ] = 7,
    ledger_buffer_file: Annotated[
        Path | None,
        typer.Option(
            "--ledger-buffer-file",
            envvar="AFFIDAVIT_LEDGER_BUFFER_FILE",
            help="Append-only file keeping decisions buffered while the ledger is away, replayed "
            "on start (default: beside a SQLite ledger; memory only for PostgreSQL).",
        ),
    ] = None,
    ledger_wait: Annotated[
        float | None,
        typer.Option(
            "--ledger-wait",
            envvar="AFFIDAVIT_LEDGER_WAIT",
            help="Seconds an append waits for the ledger's lock before buffering "
            "(default min(1, budget/8)).",
        ),
    ] = None,
    ledger_key: Annotated[
        Path | None,
        typer.Option(
            "--ledger-key",
            envvar="AFFIDAVIT_LEDGER_KEY",
            help="Ed25519 private key (PEM, from a Secret) that signs ledger checkpoints "
            "(`affidavit keygen --ledger-key`).",
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint-dir",
            envvar="AFFIDAVIT_CHECKPOINT_DIR",
            help="Directory the signed checkpoints are published to (outside the database).",
        ),
    ] = None,
    checkpoint_every: Annotated[
        int,
        typer.Option("--checkpoint-every", envvar="AFFIDAVIT_CHECKPOINT_EVERY", min=1),
    ] = 1000,
    checkpoint_interval: Annotated[
        float,
        typer.Option(
            "--checkpoint-interval", envvar="AFFIDAVIT_CHECKPOINT_INTERVAL", help="Seconds."
        ),
    ] = 60.0,
    checkpoint_configmap: Annotated[
        str | None,
        typer.Option(
            "--checkpoint-configmap",
            envvar="AFFIDAVIT_CHECKPOINT_CONFIGMAP",
            help="NAMESPACE/NAME of a ConfigMap that also keeps the newest signed checkpoints.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", envvar="AFFIDAVIT_LOG_LEVEL")] = "info",
    client_ca: Annotated[
        Path | None,
        typer.Option(
            "--client-ca",
            envvar="AFFIDAVIT_CLIENT_CA",
            help="PEM CA bundle: only a client certificate it signed may call /validate "
            "(/healthz, /readyz, /metrics stay open).",
        ),
    ] = None,
    client_name: Annotated[
        list[str] | None,
        typer.Option(
            "--client-name",
            envvar="AFFIDAVIT_CLIENT_NAMES",
            help="Subject CN or DNS SAN of the kube-apiserver's client certificate (repeat; "
            "the environment variable takes names separated by spaces).",
        ),
    ] = None,
    unmatched_images: UnmatchedImagesOpt = "Warn",
    tls_wait_seconds: Annotated[
        float,
        typer.Option(
            "--tls-wait-seconds",
            envvar="AFFIDAVIT_TLS_WAIT_SECONDS",
            help="Wait this long for --tls-cert/--tls-key to appear (written by the operator).",
        ),
    ] = 0.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            envvar="AFFIDAVIT_METRICS_PORT",
            help="Also serve /metrics over plain HTTP on this port (for Prometheus).",
        ),
    ] = None,
    decisions_api: Annotated[
        bool,
        typer.Option(
            "--decisions-api",
            envvar="AFFIDAVIT_DECISIONS_API",
            help="Also serve the ledger read-only at /decisions, for `affidavit explain "
            "--decision ID` through the apiserver's service proxy (no client certificate: "
            "restrict the port with a NetworkPolicy).",
        ),
    ] = False,
) -> None:
    """Serve AdmissionReviews over HTTPS at /validate (plus /healthz, /readyz, /metrics)."""
    from affidavit.admission.server import WebhookSettings
    from affidavit.admission.server import serve as run
    from affidavit.policy.presets import UnmatchedImages

    run(
        WebhookSettings(
            tls_cert=tls_cert,
            tls_key=tls_key,
            cluster_name=cluster_name,
            region=region,
            port=port,
            host=host,
            ledger_url=ledger or None,
            policy_dir=policy_dir,
            policy_configmap=policy_configmap,
            kubeconfig=kubeconfig,
            budget_seconds=budget_seconds,
            insecure_registries=tuple(insecure_registry or ()),
            registry_ca=registry_ca,
            registry_allowed_hosts=tuple(registry_allowed_host or ()),
            registry_timeout_seconds=registry_timeout,
            max_images_per_request=max_images_per_request,
            evidence_ttl_seconds=evidence_ttl_seconds,
            owner_check_seconds=owner_check_seconds,
            cache_bytes=evidence_cache_mib * 1024 * 1024,
            exception_max_days=exception_max_days,
            ledger_buffer_file=ledger_buffer_file,
            ledger_wait_seconds=ledger_wait,
            ledger_key=ledger_key,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            checkpoint_interval_seconds=checkpoint_interval,
            checkpoint_configmap=checkpoint_configmap,
            log_level=log_level,
            client_ca=client_ca,
            client_names=tuple(client_name or ()),
            unmatched_images=cast(UnmatchedImages, unmatched_images),
            tls_wait_seconds=tls_wait_seconds,
            metrics_port=metrics_port,
            decisions_api=decisions_api,
        )
    )


def _time(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise UsageError(
            f"{flag} {value!r} is not a date or RFC 3339 time", hint="e.g. 2026-03-01T00:00:00Z"
        ) from e


def _canonical_query(image: str) -> str:
    """The ledger records canonical references: ``nginx`` asks for ``docker.io/library/nginx``
    (any tag or digest), ``nginx:1`` for ``docker.io/library/nginx:1``."""
    ref = ImageReference.parse(image)
    return ref.name if ref.tag is None and ref.digest is None else str(ref)


def _images(r: LedgerRecord) -> str | None:
    """The decision's images, or None when the row is no readable decision."""
    from affidavit.policy.decision import Decision

    try:
        return ",".join(i.ref for i in Decision.from_dict(r.decision).images)
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


def _line(r: LedgerRecord, images: str | None) -> str:
    when = r.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    shown = "?" if images is None else images
    return f"{r.seq}\t{when}\t{r.outcome}\t{r.namespace}/{r.kind}/{r.name}\t{shown}\t{r.id}"


@decisions_app.command("list", short_help="List recorded decisions, oldest first.")
def list_decisions(
    ledger: LedgerOpt,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339, inclusive")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339, exclusive")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome")] = None,
    image: Annotated[str | None, typer.Option("--image", help="ref, repository or digest")] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="at most this many (stderr says when more match)")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one full decision per line")] = False,
) -> None:
    """List recorded decisions, oldest first (seq, time, outcome, workload, images, id)."""
    from affidavit.ledger import Ledger

    if limit < 1:
        raise UsageError(f"--limit {limit} lists nothing", hint="give a positive number")
    if limit > MAX_LIST_LIMIT:
        raise UsageError(
            f"--limit {limit} is more than a list can hold ({MAX_LIST_LIMIT:,})",
            hint="narrow with --since and --until, or read everything with `affidavit audit`",
        )
    if image is not None and not image.startswith("sha256:"):
        image = _canonical_query(image)
    if outcome is not None and outcome not in OUTCOMES:
        raise UsageError(
            f"--outcome {outcome!r} is not an outcome",
            hint="one of " + ", ".join(OUTCOMES),
        )
    start, end = _time(since, "--since"), _time(until, "--until")
    check_order(start, end)
    records = Ledger(ledger, read_only=True).query(
        since=start,
        until=end,
        namespace=namespace,
        outcome=outcome,
        image=image,
        limit=limit + 1,  # one more: whether the list was cut
    )
    unreadable = []
    for r in records[:limit]:
        images = _images(r)
        if images is None:
            unreadable.append(r.seq)
        if as_json:
            typer.echo(json.dumps({"seq": r.seq, "hash": r.hash, "decision": r.decision}))
        else:
            typer.echo(_line(r, images))
    if unreadable:
        shown = ", ".join(map(str, unreadable[:10])) + (", ..." if len(unreadable) > 10 else "")
        typer.echo(
            f"({len(unreadable)} listed row(s) are not readable decisions, seq {shown}: the"
            " ledger may have been edited; `affidavit decisions verify-chain` says where)",
            err=True,
        )
    if len(records) > limit:
        typer.echo(
            f"(the first {limit} shown; more decisions match: raise --limit, or narrow with "
            "--since, --until, --namespace, --outcome or --image)",
            err=True,
        )


@decisions_app.command(
    "verify-chain", short_help="Check the ledger's hash chain and signed checkpoints."
)
def verify_chain(
    ledger: LedgerOpt,
    ledger_public_key: LedgerPublicKeyOpt = None,
    checkpoints: CheckpointsOpt = None,
) -> None:
    """Recompute the hash chain, check every column against it and the rows against the signed
    checkpoints; exit non-zero naming the first fault. Never creates or repairs a ledger."""
    from affidavit.ledger import Ledger
    from affidavit.ledger.checkpoint import load_checkpoints
    from affidavit.policy.messages import plural

    signed = load_checkpoints(ledger_public_key, checkpoints)
    report = Ledger(ledger, read_only=True).verify_chain(signed)
    if not report.ok:
        raise LedgerError(
            f"ledger hash chain is broken at seq {report.first_broken_seq}: {report.reason} "
            f"({plural(report.checked, 'decision')} verified before it)",
            hint="the ledger was edited outside Affidavit; restore it from a backup and "
            "investigate who had write access to the database",
        )
    line = f"ok: {plural(report.checked, 'decision')}, chain intact up to seq {report.head_seq}"
    if report.checkpoint_size is not None:
        line += f", consistent with the signed checkpoint at size {report.checkpoint_size}"
    elif checkpoints is not None:
        line += f"; no signed checkpoint in {checkpoints} yet"
    typer.echo(line)


def register(root: typer.Typer) -> None:
    """Add ``webhook`` and ``decisions`` to the root app."""
    root.add_typer(webhook_app, name="webhook")
    root.add_typer(decisions_app, name="decisions")
