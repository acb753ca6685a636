"""Keep watching after admission: re-check what runs, publish PolicyReports, count findings.

Admission judges a workload once. A policy tightened later, an exception running out, evidence
growing stale: none of these reaches what already runs (the webhook deliberately admits a
controller's Pods on its owner's admission, so nothing breaks). This loop re-judges every
running workload and says where each stands, without touching it: nothing is evicted, nothing
is recorded in the ledger as an admission.

When: every ``period``; at once when the policy index the operator compiles changes (a policy,
region policy or exception created, changed or deleted, an exception expired: the reconciler
calls ``index_changed``) or when this replica becomes the leader; and when an exception enters
the warning window. Evidence ages in days (``provenance.maxAgeDays``), so the period (minutes)
catches it.

How: the judgement is the webhook's own engine (``WorkloadJudge``, built by the CLI from
``affidavit.admission.recheck``: the operator never imports the admission package, see
pyproject's layering contract), given the index the operator publishes and each workload's
Pods, grouped by top controller (``affidavit.operator.running``), with the digests the kubelet
reports (``status.imageID``) and the spec's image where there is none yet.

What: one ``wgpolicyk8s.io/v1alpha2`` PolicyReport per namespace, ``affidavit-running``
(labelled ``app.kubernetes.io/managed-by: affidavit``), one result per workload
(``affidavit.operator.findings``), with a summary Policy Reporter reads; a namespace with
nothing left to report loses its report. Every workload Affidavit judges is namespaced, so no
ClusterPolicyReport is written. Without the PolicyReport CRD the re-check still runs and counts.
The gauge ``affidavit_running_workloads{result}`` counts the last pass (served at ``/metrics``
beside ``/readyz``). Only the leader writes. The loop is ``supervise``d like the operator's others.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from affidavit.errors import AffidavitError
from affidavit.ids import new_id
from affidavit.operator import kube, supervise
from affidavit.operator.findings import RESULTS, Finding, failed, finding
from affidavit.operator.running import Workload, running_workloads
from affidavit.policy.decision import Decision
from affidavit.policy.index import PolicyIndex

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "wgpolicyk8s.io", "v1alpha2", "policyreports"
REPORT_NAME = "affidavit-running"
LABELS = {"app.kubernetes.io/managed-by": "affidavit", "affidavit.dev/report": "running"}
SELECTOR = ",".join(f"{k}={v}" for k, v in LABELS.items())
SOURCE = "affidavit"
CATEGORY = "AI code accountability"


class WorkloadJudge(Protocol):
    """The webhook's judgement of running Pods (``affidavit.admission.recheck.RunningJudge``)."""

    def judge(
        self,
        *,
        kind: str,
        name: str,
        namespace: str,
        labels: Mapping[str, str],
        pods: Sequence[Mapping[str, Any]],
        index: PolicyIndex,
        now: datetime.datetime,
        decision_id: str,
    ) -> tuple[Decision, tuple[str, ...]]: ...

    def close(self) -> None: ...


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def result_entry(w: Workload, f: Finding, stamp: int) -> dict[str, Any]:
    """One PolicyReport result (wgpolicyk8s.io/v1alpha2 ``PolicyReportResult``)."""
    return {
        "source": SOURCE,
        "policy": f.policy,
        "rule": f.rule,
        "category": CATEGORY,
        "result": f.result,
        "scored": True,
        "message": f.message,
        "resources": [
            {
                "apiVersion": w.api_version,
                "kind": w.kind,
                "name": w.name,
                "namespace": w.namespace,
                "uid": w.uid,
            }
        ],
        "properties": dict(f.properties),
        "timestamp": {"seconds": stamp, "nanos": 0},
    }


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "timestamp"} == {
        k: v for k, v in b.items() if k != "timestamp"
    }


def report_body(
    namespace: str,
    results: list[dict[str, Any]],
    previous: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The namespace's report; a result unchanged since ``previous`` keeps its timestamp (when
    it was first found), so an unchanged report is not rewritten each pass."""
    before = {
        (r.get("resources") or [{}])[0].get("uid"): r for r in (previous or {}).get("results") or []
    }
    kept = []
    for r in results:
        old = before.get(r["resources"][0]["uid"])
        kept.append(old if old is not None and _same(old, r) else r)
    summary = {k: sum(1 for r in kept if r["result"] == k) for k in RESULTS}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PolicyReport",
        "metadata": {"name": REPORT_NAME, "namespace": namespace, "labels": dict(LABELS)},
        "results": kept,
        "summary": summary,
    }


@dataclass
class Rechecker:
    """The loop of the module docstring."""

    api: kube.Kube
    judge: WorkloadJudge
    index: Callable[[], PolicyIndex | None]
    period: datetime.timedelta = datetime.timedelta(minutes=5)
    warn_within: datetime.timedelta = datetime.timedelta(days=3)
    is_leader: Callable[[], bool] = lambda: True
    #: Namespaces the webhook does not judge (the release's, kube-system, the chart's
    #: webhook.excludeNamespaces): their workloads are not re-checked either.
    exclude_namespaces: frozenset[str] = frozenset()
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)
    _loop: asyncio.AbstractEventLoop | None = None
    _checked: str | None = None  # the index digest of the last pass
    _crd: bool | None = None

    def __post_init__(self) -> None:
        self.workloads = Gauge(
            "affidavit_running_workloads",
            "Running workloads by their last re-check result (pass, fail: runs without the "
            "evidence its policies now require, warn: Warn mode or an exception about to "
            "expire, error: could not be judged, skip: runs on an exception).",
            ["result"],
            registry=self.registry,
        )
        for result in RESULTS:
            self.workloads.labels(result=result)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def mark_dirty(self) -> None:
        """Re-check soon; safe to call from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._dirty.set)
        else:
            self._dirty.set()

    def index_changed(self, index: PolicyIndex) -> None:
        """Called by the reconciler with each index it compiles."""
        if index.digest != self._checked:
            self.mark_dirty()

    # -- one pass ------------------------------------------------------------------------------

    def check_once(self) -> datetime.datetime | None:
        """Judge, report and count; returns when the next exception enters the warning window."""
        index = self.index()
        if index is None or not self.is_leader():
            return None
        now = _now()
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        counts = dict.fromkeys(RESULTS, 0)
        stamp = int(now.timestamp())
        for w in running_workloads(self.api):
            if w.namespace in self.exclude_namespaces:
                continue
            f = self._judge(w, index, now)
            if f is None:
                continue
            counts[f.result] += 1
            by_namespace.setdefault(w.namespace, []).append(result_entry(w, f, stamp))
        for result, n in counts.items():
            self.workloads.labels(result=result).set(n)
        if self.reports_available():
            self.publish(by_namespace)
        self._checked = index.digest
        return self._next_warning(index, now)

    def _judge(self, w: Workload, index: PolicyIndex, now: datetime.datetime) -> Finding | None:
        name = f"{w.kind}/{w.name}"
        try:
            decision, from_spec = self.judge.judge(
                kind=w.kind,
                name=w.name,
                namespace=w.namespace,
                labels=w.labels,
                pods=w.pods,
                index=index,
                now=now,
                decision_id=new_id(),
            )
        except AffidavitError as e:
            return failed(name, e.message)
        return finding(name, decision, now=now, warn_within=self.warn_within, from_spec=from_spec)

    def _next_warning(self, index: PolicyIndex, now: datetime.datetime) -> datetime.datetime | None:
        upcoming = [
            t
            for e in index.exceptions
            if (t := e.spec.expires_at - self.warn_within) > now and e.spec.expires_at > now
        ]
        return min(upcoming) if upcoming else None

    # -- the reports ---------------------------------------------------------------------------

    def reports_available(self) -> bool:
        """Whether the cluster serves the PolicyReport CRD; asked again each pass until it does
        (Policy Reporter or Kyverno may be installed after Affidavit)."""
        if not self._crd:
            groups = kube.call("list API groups", lambda: self.api.apis.get_api_versions())
            found = any(
                g.name == GROUP and any(v.version == VERSION for v in g.versions)
                for g in groups.groups or []
            )
            if not found and self._crd is None:
                log.warning("no %s/%s PolicyReport CRD: the re-check only counts", GROUP, VERSION)
            self._crd = found
        return self._crd

    def publish(self, by_namespace: Mapping[str, list[dict[str, Any]]]) -> None:
        """Write each namespace's report; delete those of namespaces with nothing to report."""
        custom = self.api.custom
        listed = kube.call(
            "list policyreports",
            lambda: custom.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, label_selector=SELECTOR
            ),
        )
        existing = {
            r["metadata"]["namespace"]: r
            for r in listed.get("items") or []
            if r["metadata"]["name"] == REPORT_NAME
        }
        for namespace, results in sorted(by_namespace.items()):
            previous = existing.get(namespace)
            body = report_body(namespace, results, previous)
            if previous is None:
                kube.call(
                    f"create policyreport {namespace}/{REPORT_NAME}",
                    partial(
                        custom.create_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        namespace,
                        PLURAL,
                        body,
                    ),
                )
            elif any(previous.get(k) != body[k] for k in ("results", "summary")):
                body["metadata"]["resourceVersion"] = previous["metadata"]["resourceVersion"]
                kube.call(
                    f"replace policyreport {namespace}/{REPORT_NAME}",
                    partial(
                        custom.replace_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        namespace,
                        PLURAL,
                        REPORT_NAME,
                        body,
                    ),
                )
        for namespace in sorted(set(existing) - set(by_namespace)):
            try:
                kube.call(
                    f"delete policyreport {namespace}/{REPORT_NAME}",
                    partial(
                        custom.delete_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        namespace,
                        PLURAL,
                        REPORT_NAME,
                    ),
                )
            except AffidavitError as e:
                if not kube.is_not_found(e):
                    raise

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Re-check until ``stop`` (``supervise``: back-off on failure, ``mark_dirty`` wakes)."""
        self._loop = asyncio.get_running_loop()

        async def step() -> float | None:
            warning = await asyncio.to_thread(self.check_once)
            return None if warning is None else (warning - _now()).total_seconds() + 0.05

        self._dirty.set()
        try:
            await supervise.supervise(
                "re-check",
                step,
                stop,
                interval=self.period.total_seconds(),
                backoff=supervise.Backoff(),
                wake=self._dirty,
            )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.judge.close)
