"""``kubectl affidavit``: the answers where release managers and platform engineers already look.

Why: the people whose deploy was refused live in kubectl, with a kubeconfig and the RBAC their
cluster gives them, not with the webhook's database or the policy files. This plugin (installed
with the package as ``kubectl-affidavit``; a krew manifest is in ``plugins/affidavit.yaml``)
asks the cluster:

* ``why deploy/NAME``: the latest decisions for the workload and its children (ReplicaSets,
  Pods, Jobs), in full, through the webhook's decisions API;
* ``explain ID``: one decision;
* ``exceptions``: the break-glass exceptions that are active, expiring soon, or (``--all``)
  expired and invalid;
* ``policy [IMAGE]``: the effective policy in a namespace, from the policy index the webhook
  judges by, with the source of each requirement.

Every read is the user's own (kubeconfig), so RBAC decides who may read: the chart's
ClusterRole ``affidavit-decision-reader`` grants exactly these reads (the decisions of every
namespace: the service proxy passes the webhook no identity to filter by). Imports stay inside the
commands so ``kubectl affidavit --help`` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from affidavit.cli.options import EXIT_CODES, PeopleOpt, RevealKeyOpt, revealer
from affidavit.names import REQUESTED_BY_ANNOTATION
from affidavit.printable import printable

if TYPE_CHECKING:
    from affidavit.cli.cluster import Cluster

app = typer.Typer(
    name="kubectl affidavit",
    help="Affidavit's decisions, exceptions and policies, read from the cluster with your "
    "kubeconfig (RBAC: the ClusterRole affidavit-decision-reader).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    epilog=EXIT_CODES,
)

KubeconfigOpt = Annotated[
    Path | None, typer.Option("--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file.")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context.")]
NamespaceOpt = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Namespace (default: the context's, else default)."),
]
ServiceOpt = Annotated[
    str,
    typer.Option(
        "--service",
        envvar="AFFIDAVIT_SERVICE",
        help="The webhook's Service NAMESPACE/NAME (its decisions API and policy index).",
    ),
]
DEFAULT_SERVICE = "affidavit-system/affidavit"

#: ``kubectl`` short names and kinds of the workloads the webhook judges.
KINDS = {
    "deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
    "sts": "StatefulSet", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
    "ds": "DaemonSet", "daemonset": "DaemonSet", "daemonsets": "DaemonSet",
    "rs": "ReplicaSet", "replicaset": "ReplicaSet", "replicasets": "ReplicaSet",
    "job": "Job", "jobs": "Job", "cj": "CronJob", "cronjob": "CronJob", "cronjobs": "CronJob",
    "po": "Pod", "pod": "Pod", "pods": "Pod",
    "rc": "ReplicationController", "replicationcontroller": "ReplicationController",
}  # fmt: skip
#: Where each kind's objects are listed, for finding a workload's children by owner UID.
_LISTS = {
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
}
_CHILDREN = {
    "Deployment": ("ReplicaSet",),
    "ReplicaSet": ("Pod",),
    "StatefulSet": ("Pod",),
    "DaemonSet": ("Pod",),
    "ReplicationController": ("Pod",),
    "CronJob": ("Job",),
    "Job": ("Pod",),
}
_READS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets/{name}",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets/{name}",
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets/{name}",
    "ReplicationController": "/api/v1/namespaces/{ns}/replicationcontrollers/{name}",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs/{name}",
    "Pod": "/api/v1/namespaces/{ns}/pods/{name}",
}


def _workload(value: str) -> tuple[str, str]:
    from affidavit.errors import UsageError

    kind, sep, name = value.partition("/")
    if not sep or not name or kind.lower() not in KINDS:
        raise UsageError(
            f"{value!r} is not TYPE/NAME of a workload",
            hint="for example deploy/checkout, sts/db, job/migrate or pod/checkout-7d9f-x2x",
        )
    return KINDS[kind.lower()], name


def _namespace(kubeconfig: Path | None, context: str | None, namespace: str | None) -> str:
    if namespace:
        return namespace
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig else None
        )
    except Exception:  # no kubeconfig: Cluster() says so with the fix
        return "default"
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def _children(cluster: Cluster, namespace: str, kind: str, name: str) -> list[tuple[str, str]]:
    """The workload and what it made, as (kind, name), read from the apiserver by owner UID.

    A workload the webhook refused does not exist: then it is just itself."""
    from affidavit.cli.cluster import ApiNotFound
    from affidavit.errors import ClusterError

    found = [(kind, name)]
    try:
        obj = cluster.get(_READS[kind].format(ns=namespace, name=name))
    except ApiNotFound:
        return found
    except ClusterError as e:  # RBAC, say: the decisions of the name alone, and say why
        typer.echo(f"note: cannot read {kind}/{name} for its children: {e.message}", err=True)
        return found
    owners = {(kind, str(obj["metadata"]["uid"]))}
    queue = [kind]
    listed: dict[str, list[dict[str, Any]]] = {}
    while queue:
        parent = queue.pop(0)
        for child in _CHILDREN.get(parent, ()):
            if child not in listed:
                listed[child] = list(
                    cluster.get(_LISTS[child].format(ns=namespace)).get("items") or []
                )
            for item in listed[child]:
                refs = item["metadata"].get("ownerReferences") or []
                if any((r.get("kind"), r.get("uid")) in owners for r in refs):
                    owners.add((child, str(item["metadata"]["uid"])))
                    found.append((child, str(item["metadata"]["name"])))
                    if child not in queue:
                        queue.append(child)
    return found


@app.command("why", short_help="The latest decisions for a workload and its children.")
def why(
    workload: Annotated[str, typer.Argument(help="TYPE/NAME, e.g. deploy/checkout.")],
    namespace: NamespaceOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Decisions shown at most.", min=1)] = 5,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    service: ServiceOpt = DEFAULT_SERVICE,
    pseudonym_key: RevealKeyOpt = None,
    people: PeopleOpt = None,
) -> None:
    """The latest decisions for a workload and its children, newest first, in full."""
    from affidavit.cli.cluster import Cluster, ServiceRef
    from affidavit.policy.decision import Decision
    from affidavit.policy.explain import explain_decision

    kind, name = _workload(workload)
    shown_as = revealer(pseudonym_key, people) or (lambda text: text)
    ref = ServiceRef.parse(service)
    ns = _namespace(kubeconfig, context, namespace)
    cluster = Cluster(kubeconfig, context)
    targets = _children(cluster, ns, kind, name)
    wanted = set(targets)
    names = sorted({n for _, n in targets})
    items = cluster.decisions(ref, namespace=ns, kind=None, names=names, limit=max(limit, 20))
    mine = [i for i in items if (i["decision"].get("kind"), i["decision"].get("name")) in wanted]
    if not mine:
        from affidavit.errors import UsageError

        raise UsageError(
            f"no decision recorded for {kind}/{name} in namespace {ns} or what it created",
            hint="check the name and namespace (-n); a dry run is never recorded",
        )
    shown = mine[:limit]
    for n, item in enumerate(shown):
        if n:
            typer.echo("")
        typer.echo(shown_as(explain_decision(Decision.from_dict(item["decision"]))))
        typer.echo(f"ledger: seq {item['seq']}, hash {item['hash']}")
    if len(mine) > limit:
        typer.echo(f"\n({len(mine) - limit} older not shown; --limit N shows more)")


@app.command("explain")
def explain(
    decision_id: Annotated[str, typer.Argument(help="The decision id from a denial.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    service: ServiceOpt = DEFAULT_SERVICE,
    pseudonym_key: RevealKeyOpt = None,
    people: PeopleOpt = None,
) -> None:
    """One recorded decision, in full."""
    from affidavit.cli.explain import explain_recorded

    shown = revealer(pseudonym_key, people, json_text=as_json) or (lambda text: text)
    explain_recorded(decision_id, None, kubeconfig, context, service, as_json, shown)


def _state(obj: dict[str, Any], now: datetime, soon: timedelta) -> tuple[str, str]:
    """(state, time left) of an AccountabilityException: Active, Expiring, Expired, Invalid."""
    status = obj.get("status") or {}
    raw = str((obj.get("spec") or {}).get("expiresAt") or "")
    try:
        expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return "Invalid", "-"
    left = expires - now
    if status.get("phase") == "Invalid":
        return "Invalid", _duration(left)
    if left <= timedelta(0):
        return "Expired", _duration(left)
    return ("Expiring" if left <= soon else "Active"), _duration(left)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{sign}{days}d{hours}h"
    return f"{sign}{hours}h{rest // 60}m"


def _table(cells: Sequence[Sequence[str]]) -> str:
    # a tenant writes an exception's incident, owner and approvers: shown printable
    rows = [[printable(cell) for cell in row] for row in cells]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


@app.command("exceptions", short_help="Break-glass exceptions in force and about to end.")
def exceptions(
    namespace: NamespaceOpt = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="In every namespace.")
    ] = False,
    expiring_within: Annotated[
        float,
        typer.Option("--expiring-within", help="Hours: Active ones ending sooner are Expiring."),
    ] = 24.0,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also the Expired and Invalid ones.")
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Break-glass exceptions in force (Active) and about to end (Expiring), soonest first."""
    from affidavit.cli.cluster import Cluster

    ns = None if all_namespaces else _namespace(kubeconfig, context, namespace)
    objs = Cluster(kubeconfig, context).custom("accountabilityexceptions", ns)
    now = datetime.now(UTC)
    rows = []
    for obj in objs:
        state, left = _state(obj, now, timedelta(hours=expiring_within))
        if state in ("Expired", "Invalid") and not show_all:
            continue
        spec, meta = obj.get("spec") or {}, obj.get("metadata") or {}
        rows.append((
            str(spec.get("expiresAt") or ""),
            [str(meta.get("namespace")), str(meta.get("name")), state, left,
             str(spec.get("expiresAt") or "-"), str(spec.get("incidentId") or "-"),
             str(spec.get("owner") or "-"), ",".join(spec.get("approvers") or []) or "-",
             str((meta.get("annotations") or {}).get(REQUESTED_BY_ANNOTATION) or "(not stamped)")],
        ))  # fmt: skip
    where = "any namespace" if ns is None else f"namespace {ns}"
    if not rows:
        typer.echo(f"no {'' if show_all else 'active '}AccountabilityException in {where}")
        return
    header = ["NAMESPACE", "NAME", "STATE", "LEFT", "EXPIRES", "INCIDENT", "OWNER", "APPROVERS",
              "REQUESTED BY"]  # fmt: skip
    typer.echo(_table([header, *[r for _, r in sorted(rows, key=lambda x: x[0])]]))


@app.command("policy", short_help="The effective policy for a namespace or an image.")
def policy(
    image: Annotated[
        str | None, typer.Argument(help="An image: its effective policy, requirement by source.")
    ] = None,
    namespace: NamespaceOpt = None,
    cluster_name: Annotated[
        str | None,
        typer.Option("--cluster", help="The cluster's name (default: as the webhook records it)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="The cluster's region (default: as the webhook records it)."),
    ] = None,
    unmatched_images: Annotated[
        str,
        typer.Option("--unmatched-images", help="The chart's unmatchedImages (Allow, Warn, Deny)."),
    ] = "Warn",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    service: ServiceOpt = DEFAULT_SERVICE,
) -> None:
    """The effective policy for IMAGE in a namespace, each requirement with its source.

    Without IMAGE: which policies apply in the namespace, and to which images."""
    from affidavit.cli.cluster import Cluster, ServiceRef
    from affidavit.cli.explain import explain_unmatched
    from affidavit.errors import ClusterError
    from affidavit.names import INDEX_CONFIGMAP, INDEX_KEY
    from affidavit.policy import PolicyIndex
    from affidavit.policy.explain import explain_policy
    from affidavit.policy.matching import glob_any, selector_matches

    ref = ServiceRef.parse(service)
    ns = _namespace(kubeconfig, context, namespace)
    cluster = Cluster(kubeconfig, context)
    cm = cluster.get(f"/api/v1/namespaces/{ref.namespace}/configmaps/{INDEX_CONFIGMAP}")
    text = (cm.get("data") or {}).get(INDEX_KEY)
    if not text:
        raise ClusterError(
            f"the ConfigMap {ref.namespace}/{INDEX_CONFIGMAP} holds no {INDEX_KEY}",
            hint="the operator publishes it; check that it runs",
        )
    index = PolicyIndex.from_json(text)
    if cluster_name is None or region is None:
        newest = cluster.decisions(ref, namespace=ns, kind=None, names=[], limit=1) or [{}]
        recorded = newest[0].get("decision") or {}
        cluster_name = cluster_name if cluster_name is not None else recorded.get("cluster", "")
        region = region if region is not None else recorded.get("region", "")
    labels = cluster.namespace_labels(ns)
    where = f"cluster {cluster_name or '-'}, region {region or '-'}, namespace {ns}"
    if image is None:
        typer.echo(f"Policies that apply in {where}:")
        shown = 0
        for p in index.policies:
            m = p.spec.match
            if (
                (not m.regions or glob_any(m.regions, region))
                and (not m.clusters or glob_any(m.clusters, cluster_name))
                and selector_matches(m.namespace_selector, labels)
            ):
                shown += 1
                typer.echo(f"  {p.kind}/{p.name} ({p.spec.mode}): images {', '.join(m.images)}")
        for r in index.region_policies:
            if glob_any(r.spec.regions, region):
                typer.echo(f"  {r.kind}/{r.name}: tightens the policies above in region {region}")
        if not shown:
            typer.echo("  none: every image is unmatched here (see --unmatched-images)")
        typer.echo("Give an IMAGE for its effective requirements and the source of each.")
        return
    from affidavit.attestations.reference import canonical_image

    image = canonical_image(image)
    eff = index.effective(
        cluster=cluster_name, region=region, namespace=ns, namespace_labels=labels, image=image
    )
    if eff is None:
        explain_unmatched(index, image, cluster_name, region, ns, labels, unmatched_images)
        return
    typer.echo(f"{image} in {where}")
    typer.echo(explain_policy(eff))


def main(argv: Sequence[str] | None = None) -> int:
    """``kubectl-affidavit``: errors become exit codes the way ``affidavit`` maps them."""
    from affidavit.cli.main import run

    return run(app, "kubectl affidavit", argv)


if __name__ == "__main__":
    sys.exit(main())
