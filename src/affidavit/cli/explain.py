"""CLI: ``affidavit explain`` — which policy asks what of an image, and (given evidence) why.

A release manager whose deploy was refused runs this against the same policy files the cluster
holds and sees every requirement with the policy, preset and control behind it; with
``--evidence DIR`` it also replays the decision. It reads files only: no cluster, no registry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from affidavit.attestations.reference import canonical_image
from affidavit.cli.options import PeopleOpt, RevealKeyOpt, revealer
from affidavit.errors import LedgerError, PolicyError, UsageError

if TYPE_CHECKING:  # the policy engine (pydantic CRD models) is imported by explain only
    from affidavit.policy import EffectivePolicy, PolicyIndex
    from affidavit.policy.decision import Decision


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} {v!r}: expected KEY=VALUE")
        out[key] = value
    return out


def explain_recorded(
    decision_id: str,
    ledger_url: str | None,
    kubeconfig: Path | None,
    context: str | None,
    service: str,
    as_json: bool,
    shown: Callable[[str], str] = lambda text: text,
) -> None:
    """Print a decision the webhook recorded (what the denial points to): from the ledger
    database with ``--ledger``, else from the cluster's decisions API with the kubeconfig;
    ``shown`` is what the printed text goes through (the pseudonyms of ``--people``)."""
    from affidavit.policy.explain import explain_decision

    if ledger_url is not None:
        from affidavit.ledger import Ledger  # SQLAlchemy: only for the command that reads it

        ledger = Ledger(ledger_url, read_only=True)
        record = ledger.get(decision_id)
        if record is None:
            raise UsageError(  # ledger.url: the password hidden (this lands in CI logs)
                f"decision {decision_id} is not in the ledger {ledger.url}",
                hint="pass the ledger the webhook writes to with --ledger or $AFFIDAVIT_LEDGER",
            )
        found: dict[str, Any] = {
            "seq": record.seq,
            "hash": record.hash,
            "decision": record.decision,
        }
    else:
        from affidavit.cli.cluster import Cluster, ServiceRef

        ref = ServiceRef.parse(service)
        found = Cluster(kubeconfig, context).decision(ref, decision_id)
    if as_json:
        typer.echo(shown(json.dumps(found, indent=2, sort_keys=True)))
        return
    typer.echo(shown(explain_decision(_read_decision(found, decision_id))))
    typer.echo(f"ledger: seq {found['seq']}, hash {found['hash']}")


def _read_decision(found: dict[str, Any], decision_id: str) -> Decision:
    """The recorded decision; a row that is not one (edited in the database, or written by a
    newer Affidavit) is a LedgerError naming it, never a stack trace."""
    from affidavit.policy.decision import Decision

    data = found.get("decision")
    try:
        if not isinstance(data, dict) or not data:
            raise ValueError("it holds no decision (not a JSON object, or an empty one)")
        return Decision.from_dict(data)
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise LedgerError(
            f"decision {decision_id} (ledger seq {found.get('seq')}) is not a decision this "
            f"Affidavit reads: {e}",
            hint="check whether the row was edited: affidavit decisions verify-chain --ledger "
            "URL (the ledger the webhook writes to)",
        ) from e


def _explain_exceptions(
    index: PolicyIndex,
    eff: EffectivePolicy,
    namespace: str,
    kind: str,
    name: str,
    image: str,
    now: datetime,
) -> list[tuple[str, str | None]]:
    """Each exception in ``namespace`` with why it would not cover this workload's image
    (``None``: it applies)."""
    from affidavit.policy.health import why_not_applied

    mine = [e for e in index.exceptions if e.namespace == namespace]
    bound = eff.exception_max_days
    max_days = (bound.value, str(bound.origin)) if bound is not None else None
    refs = {r.name: r for r in index.exceptions_for(namespace, kind, name, image, now)}
    return [
        (
            e.name,
            why_not_applied(
                e, refs.get(e.name), kind=kind, name=name, image=image, now=now, max_days=max_days
            ),
        )
        for e in mine
    ]


def explain_unmatched(
    index: PolicyIndex,
    image: str,
    cluster: str,
    region: str,
    namespace: str,
    ns_labels: dict[str, str],
    setting: str,
    as_json: bool = False,
) -> None:
    """No policy matches: say so, and what the webhook does with the image (unmatchedImages)."""
    from affidavit.policy.presets import UnmatchedImages
    from affidavit.policy.unmatched import unmatched_rule, unmatched_violation

    if setting not in ("Allow", "Warn", "Deny"):
        raise UsageError(f"--unmatched-images {setting!r} is not Allow, Warn or Deny")
    rule = unmatched_rule(
        index,
        cluster=cluster,
        region=region,
        namespace_labels=ns_labels,
        cluster_setting=cast(UnmatchedImages, setting),
    )
    violation = unmatched_violation(image, rule).message if rule.mode is not None else None
    if as_json:
        from affidavit.cli.explain_json import dumps

        document = {
            "image": image,
            "matched": False,
            "unmatchedImages": {"setting": rule.setting, "source": str(rule.origin)},
            "message": violation,
        }
        typer.echo(dumps(document))
        if rule.setting == "Deny":
            raise typer.Exit(1)
        return
    typer.echo(
        f"no AccountabilityPolicy matches {image} in cluster {cluster or '-'}, region "
        f"{region or '-'}, namespace {namespace}: it is not under policy"
    )
    does = {"Allow": "admits it", "Warn": "admits it with a warning", "Deny": "refuses it"}
    typer.echo(f"unmatchedImages: {rule.setting} ({rule.origin}): the webhook {does[rule.setting]}")
    if violation is not None:
        typer.echo(f"  {violation}")
    if rule.setting == "Deny":
        raise typer.Exit(1)


def explain(
    image: Annotated[
        str | None, typer.Argument(help="Image reference, ideally REPOSITORY@sha256:...")
    ] = None,
    policy: Annotated[
        list[Path] | None,
        typer.Option("--policy", help="YAML file of policies, region policies, exceptions."),
    ] = None,
    decision_id: Annotated[
        str | None,
        typer.Option("--decision", help="Explain this recorded decision (id from a denial)."),
    ] = None,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            envvar="AFFIDAVIT_LEDGER",
            help="Read --decision from this ledger database URL instead of the cluster.",
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig", envvar="KUBECONFIG", help="With --decision: the cluster to ask."
        ),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context.")] = None,
    service: Annotated[
        str,
        typer.Option(
            "--service",
            envvar="AFFIDAVIT_SERVICE",
            help="With --decision: the webhook's Service NAMESPACE/NAME (its decisions API).",
        ),
    ] = "affidavit-system/affidavit",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the explanation (or the record) as JSON.")
    ] = False,
    region: Annotated[str, typer.Option(help="The cluster's region.")] = "",
    cluster: Annotated[str, typer.Option(help="The cluster's name.")] = "",
    namespace: Annotated[str, typer.Option(help="Namespace of the workload.")] = "default",
    namespace_label: Annotated[
        list[str] | None, typer.Option(help="Namespace label KEY=VALUE (repeatable).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="Workload label KEY=VALUE (repeatable).")
    ] = None,
    kind: Annotated[str, typer.Option(help="Workload kind.")] = "Deployment",
    name: Annotated[str, typer.Option(help="Workload name.")] = "workload",
    evidence: Annotated[
        Path | None,
        typer.Option(
            help="Directory of verified predicate or Statement JSON files: replay the decision "
            "(exit 1 when it would be denied)."
        ),
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="Evaluate as of this RFC 3339 time (default: now).")
    ] = None,
    unmatched_images: Annotated[
        str,
        typer.Option(
            "--unmatched-images",
            help="The cluster's unmatchedImages setting (Allow, Warn, Deny; chart default Warn).",
        ),
    ] = "Warn",
    pseudonym_key: RevealKeyOpt = None,
    people: PeopleOpt = None,
) -> None:
    """Explain a recorded decision, or the effective policy for IMAGE by source.

    --decision ID reads the record through the cluster's decisions API with your kubeconfig
    (or from --ledger URL); IMAGE with --policy FILE shows each requirement and the policy
    behind it, and --evidence DIR replays the decision."""
    from affidavit.policy import PolicyIndex, RequestContext, evaluate
    from affidavit.policy.explain import explain_decision, explain_policy
    from affidavit.policy.model import KIND_EXCEPTION, KIND_POLICY, KIND_REGION

    if decision_id is not None:
        if image is not None or policy:
            raise UsageError("--decision explains a recorded decision; drop IMAGE and --policy")
        shown = revealer(pseudonym_key, people, json_text=as_json) or (lambda text: text)
        explain_recorded(decision_id, ledger, kubeconfig, context, service, as_json, shown)
        return
    if image is None or not policy:
        raise UsageError(
            "give IMAGE and at least one --policy FILE, or --decision ID",
            hint="`affidavit explain --decision <id>` explains a denial the webhook recorded",
        )
    from affidavit.cli.explain_files import load_evidence, load_objects

    objs = load_objects(policy)
    index = PolicyIndex.from_objects(objs[KIND_POLICY], objs[KIND_REGION], objs[KIND_EXCEPTION])
    if index.errors:
        raise PolicyError(
            "invalid policy objects: " + "; ".join(f"{k}: {v}" for k, v in index.errors.items()),
            hint="fix the named fields; the cluster rejects or ignores these objects too",
        )
    ns_labels = _pairs(namespace_label or [], "--namespace-label")
    image = canonical_image(image)  # the name the webhook judges and records it under
    eff = index.effective(
        cluster=cluster, region=region, namespace=namespace, namespace_labels=ns_labels, image=image
    )
    if eff is None:
        explain_unmatched(
            index, image, cluster, region, namespace, ns_labels, unmatched_images, as_json
        )
        return
    try:
        now = datetime.fromisoformat(at.replace("Z", "+00:00")) if at else datetime.now(UTC)
    except ValueError as e:
        raise UsageError(f"--at {at!r}: not an RFC 3339 time") from e
    verdicts = _explain_exceptions(index, eff, namespace, kind, name, image, now)
    from affidavit.policy.residency import residency_violations

    by_name = residency_violations(image, None, eff)  # known before any evidence is looked at
    document: dict[str, Any] = {}
    if as_json:
        from affidavit.cli.explain_json import policy_document

        document = {"image": image, "matched": True, **policy_document(eff)}
        document["unmetByName"] = [v.message for v in by_name]
        document["exceptions"] = [
            {"namespace": namespace, "name": n, "applies": why is None, "reason": why}
            for n, why in verdicts
        ]
    else:
        typer.echo(explain_policy(eff))
        if by_name:
            typer.echo("Unmet by the image's name alone, whatever its evidence")
        for v in by_name:
            typer.echo(f"  {v.message}")
        if verdicts:
            typer.echo(f"Exceptions in namespace {namespace} (for {kind}/{name})")
        for n, why in verdicts:
            typer.echo(
                f"  {namespace}/{n}: {'applies' if why is None else f'does not apply: {why}'}"
            )
    if evidence is None:
        if as_json:
            from affidavit.cli.explain_json import dumps

            typer.echo(dumps(document))
        return
    signer = eff.signers[0].name if eff.signers else "local"
    ctx = RequestContext(
        uid="explain",
        cluster=cluster,
        region=region,
        namespace=namespace,
        namespace_labels=ns_labels,
        kind=kind,
        name=name,
        operation="CREATE",
        user="affidavit-explain",
        labels=_pairs(label or [], "--label"),
        images=(image,),
    )
    ev = {image: load_evidence(evidence, image, signer)}
    decision = evaluate(ctx, ev, index, now=now, decision_id=f"explain-{uuid.uuid4().hex[:8]}")
    if as_json:
        from affidavit.cli.explain_json import decision_document, dumps

        typer.echo(dumps({**document, "decision": decision_document(decision)}))
    else:
        typer.echo("")
        typer.echo(explain_decision(decision))
    if decision.outcome == "denied":
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Add ``affidavit explain`` to the root app."""
    root.command("explain", short_help="Explain a decision, or the effective policy for IMAGE.")(
        explain
    )
