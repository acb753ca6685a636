"""Denials and warnings from the ledger, told to the people who own the workload.

A release manager looks at ``kubectl describe`` and ``kubectl get events`` first, not at the
webhook's logs. The webhook records every decision in the ledger; this reporter follows the
ledger (``after(cursor)``) and emits a core/v1 Event on the workload for each denial
(``AffidavitDenied``) or warning (``AffidavitWarned``), with the decision id so that
``affidavit explain`` finds the full record. If the cluster has the ``wgpolicyk8s.io``
PolicyReport CRD, a report per workload is kept as well. The cursor is stored in the ConfigMap
``affidavit-operator-state`` so a restarted operator neither repeats nor skips Events.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from affidavit.errors import AffidavitError
from affidavit.ledger import Ledger, LedgerRecord
from affidavit.operator import kube, supervise
from affidavit.policy.decision import Decision, Violation
from affidavit.printable import printable

log = logging.getLogger(__name__)

STATE_CONFIGMAP = "affidavit-operator-state"
CURSOR_KEY = "eventsCursor"
REASONS = {"denied": "AffidavitDenied", "warned": "AffidavitWarned"}
API_VERSIONS = {
    "Pod": "v1",
    "ReplicationController": "v1",
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
}
POLICY_REPORT = ("wgpolicyk8s.io", "v1alpha2", "policyreports")
_MAX_MESSAGE = 1000


def recorded_violations(record: LedgerRecord) -> tuple[Violation, ...]:
    """The violations of a stored decision; none when the row is not a readable decision (the
    Event then says what was decided and points to ``affidavit explain``)."""
    try:
        return Decision.from_dict(record.decision).violations
    except (TypeError, KeyError, ValueError):
        return ()


def short_message(record: LedgerRecord) -> str:
    """One line: what was decided, the first rule and what was found, and the command that shows
    the whole record. Never a sentence cut in the middle: when the finding does not fit, the
    rules alone are named (the full text is in the ledger)."""
    violations = recorded_violations(record)
    verb = "denied" if record.outcome == "denied" else "admitted with a warning"
    head = f"Affidavit {verb} {record.kind}/{record.name} (decision {record.id})"
    if not violations:
        return head
    why = (
        f"; run `kubectl affidavit why {record.kind.lower()}/{record.name} -n "
        f"{record.namespace}` for the full record"
    )
    more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
    first = violations[0]
    text = f"{head}: {first.rule}: found {printable(first.found)}{more}"
    if len(text) + len(why) > _MAX_MESSAGE:
        rules = list(dict.fromkeys(v.rule for v in violations))
        text = f"{head}: violated {', '.join(rules)}"
        while len(text) + len(why) > _MAX_MESSAGE and len(rules) > 1:
            rules.pop()
            text = f"{head}: violated {', '.join(rules)} and more"
    return text + why


#: Object names (an Event's, a PolicyReport's) are DNS subdomains: at most 253 characters.
_MAX_NAME = 253
#: What a PolicyReport lists of one decision: a few rules at most in practice; a decision of 64
#: images each missing everything stays well inside etcd's 1.5 MiB object limit.
_MAX_RESULTS = 50


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", text.lower())


def event_name(record: LedgerRecord) -> str:
    """A valid, unique object name for the Event of one decision: the workload's name, cut
    where it must be, then the decision id, always (a name of 253 characters would otherwise
    leave no room for it, and every later Event of that workload would collide)."""
    suffix = _slug(f".affidavit-{record.id}").rstrip(".-")
    head = _slug(record.name).strip(".-")[: _MAX_NAME - len(suffix)].rstrip(".-")
    return (head + suffix).lstrip(".-")


def report_name(kind: str, name: str) -> str:
    """The PolicyReport of one workload: ``affidavit-<kind>-<name>``, or, where that is longer
    than a name may be, its first characters and a hash of the whole (still one per workload)."""
    full = _slug(f"affidavit-{kind}-{name}").strip(".-")
    if len(full) <= _MAX_NAME:
        return full
    digest = hashlib.sha256(f"{kind}/{name}".encode()).hexdigest()[:16]
    return full[: _MAX_NAME - 17].rstrip(".-") + "-" + digest


def _transient(error: AffidavitError) -> bool:
    """Whether a failed call is worth retrying: the API server unreachable, overloaded or
    failing (no status, 429, 5xx), or this operator's credentials or permissions refused (401,
    a 403 but a terminating namespace's): an installation to fix, after which every Event is
    still owed. Anything else (the namespace gone or terminating, an object the API server
    refuses) fails the same way every time."""
    cause = error.__cause__
    if not isinstance(cause, ApiException):
        return True
    status = cause.status
    if status is None or status in (401, 429) or status >= 500:
        return True
    return status == 403 and "being terminated" not in str(cause.body or "")


def _bounded(message: str, most: int = 4 * _MAX_MESSAGE) -> str:
    """A PolicyReport result's message, cut to ``most`` characters where it is longer (the
    whole text is in the ledger)."""
    if len(message) <= most:
        return message
    cut = " … (cut; the ledger holds the whole text)"
    return message[: most - len(cut)] + cut


def event_body(record: LedgerRecord, cluster: str) -> Any:
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=event_name(record), namespace=record.namespace),
        involved_object=client.V1ObjectReference(
            api_version=API_VERSIONS.get(record.kind),
            kind=record.kind,
            name=record.name,
            namespace=record.namespace,
        ),
        reason=REASONS[record.outcome],
        message=short_message(record),
        type="Warning",
        count=1,
        first_timestamp=record.time,
        last_timestamp=record.time,
        event_time=None,
        source=client.V1EventSource(component="affidavit", host=cluster or None),
        reporting_component="affidavit.dev/operator",
        reporting_instance=cluster or "affidavit",
        action="Admission",
    )


@dataclass
class EventReporter:
    """Follows the ledger and emits Events (and PolicyReports when their CRD exists)."""

    api: kube.Kube
    ledger: Ledger
    namespace: str
    cluster: str = ""
    batch: int = 100
    interval: float = 2.0
    cursor: int | None = None
    #: Only the replica holding the operator Lease reports (see affidavit.operator.leader).
    is_leader: Callable[[], bool] = lambda: True
    _policy_reports: bool | None = field(default=None, repr=False)
    #: Decisions whose Event or PolicyReport the API server refused for good (logged, skipped).
    skipped: int = 0

    def load_cursor(self) -> int:
        """The last seq already reported, if the stored cursor belongs to this ledger.

        The cursor is stored as ``<seq>:<hash of that decision>``. When the ledger at that seq
        holds another decision (the operator now follows a different or a recreated ledger),
        the cursor is not this ledger's: start from the beginning rather than skip its
        decisions. Re-emitting is harmless, since an Event already created is a conflict.
        """
        cm = kube.read_configmap(self.api, self.namespace, STATE_CONFIGMAP)
        value = (cm.data or {}).get(CURSOR_KEY, "") if cm is not None else ""
        seq_text, _, stored_hash = value.partition(":")
        if not seq_text.isdigit() or int(seq_text) == 0:
            return 0
        seq = int(seq_text)
        at = self.ledger.after(seq - 1, 1)
        if not at or at[0].seq != seq or at[0].hash != stored_hash:
            return 0
        return seq

    def save_cursor(self, record: LedgerRecord) -> None:
        kube.apply_configmap(
            self.api,
            self.namespace,
            STATE_CONFIGMAP,
            {CURSOR_KEY: f"{record.seq}:{record.hash}"},
            {},
        )

    def poll_once(self) -> int:
        """Emit what is new since the cursor; returns how many Events were created."""
        if not self.is_leader():
            self.cursor = None  # on taking over, continue from the stored cursor
            return 0
        if self.cursor is None:
            self.cursor = self.load_cursor()
        emitted = 0
        while True:
            records = self.ledger.after(self.cursor, self.batch)
            if not records:
                return emitted
            done: LedgerRecord | None = None
            for record in records:
                if record.outcome in REASONS:
                    try:
                        self.emit(record)
                    except AffidavitError as e:
                        if _transient(e):  # tried again from this decision on the next poll
                            if done is not None:
                                self.cursor = done.seq
                                self.save_cursor(done)
                            raise
                        # One decision's refusal must not hold every later one (in any
                        # namespace) back for ever: a namespace deleted after a denial, say.
                        self.skipped += 1
                        log.warning(
                            "no Event or PolicyReport for decision %s (%s/%s in %s): %s; it "
                            "stays in the ledger (affidavit explain --decision %s)",
                            record.id,
                            record.kind,
                            printable(record.name),
                            record.namespace,
                            e.message,
                            record.id,
                        )
                    else:
                        emitted += 1
                done = record
            self.cursor = records[-1].seq
            self.save_cursor(records[-1])

    def render(self) -> bytes:
        """``affidavit_operator_events_skipped_total`` in Prometheus's text format."""
        return (
            b"# HELP affidavit_operator_events_skipped_total Denials and warnings whose Event "
            b"or PolicyReport the API server refused (the log names each; the ledger keeps "
            b"them).\n"
            b"# TYPE affidavit_operator_events_skipped_total counter\n"
            b"affidavit_operator_events_skipped_total %d\n" % self.skipped
        )

    def emit(self, record: LedgerRecord) -> None:
        body = event_body(record, self.cluster)
        try:
            kube.call(
                f"create event in {record.namespace}",
                lambda: self.api.core.create_namespaced_event(record.namespace, body),
            )
        except AffidavitError as e:
            if not kube.is_conflict(e):  # already emitted before a restart: fine
                raise
        if self.policy_reports_available():
            self.report(record)

    def policy_reports_available(self) -> bool:
        if self._policy_reports is None:
            group, version, _ = POLICY_REPORT
            groups = kube.call("list API groups", lambda: self.api.apis.get_api_versions())
            self._policy_reports = any(
                g.name == group and any(v.version == version for v in g.versions)
                for g in groups.groups or []
            )
        return self._policy_reports

    def report(self, record: LedgerRecord) -> None:
        """Replace the workload's PolicyReport with the results of this decision."""
        group, version, plural = POLICY_REPORT
        name = report_name(record.kind, record.name)
        result = "fail" if record.outcome == "denied" else "warn"
        stamp = int(record.time.timestamp())
        violations = recorded_violations(record)
        results: list[dict[str, Any]] = [
            {
                "source": "affidavit",
                "policy": v.policy,
                "rule": v.rule,
                "result": result,
                "message": _bounded(v.message),
                "timestamp": {"seconds": stamp, "nanos": 0},
                "properties": {"decision": record.id},
            }
            for v in violations[:_MAX_RESULTS]
        ]
        if len(violations) > _MAX_RESULTS:
            results[-1]["properties"]["omitted"] = str(len(violations) - _MAX_RESULTS)
        body: dict[str, Any] = {
            "apiVersion": f"{group}/{version}",
            "kind": "PolicyReport",
            "metadata": {"name": name, "namespace": record.namespace},
            "scope": {
                "apiVersion": API_VERSIONS.get(record.kind, "v1"),
                "kind": record.kind,
                "name": record.name,
                "namespace": record.namespace,
            },
            "results": results,
            "summary": {
                "fail": len(results) if result == "fail" else 0,
                "warn": len(results) if result == "warn" else 0,
            },
        }
        api = self.api.custom
        try:
            current = kube.call(
                f"get policyreport {name}",
                lambda: api.get_namespaced_custom_object(
                    group, version, record.namespace, plural, name
                ),
            )
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            kube.call(
                f"replace policyreport {name}",
                lambda: api.replace_namespaced_custom_object(
                    group, version, record.namespace, plural, name, body
                ),
            )
        except AffidavitError as e:
            if not kube.is_not_found(e):
                raise
            kube.call(
                f"create policyreport {name}",
                lambda: api.create_namespaced_custom_object(
                    group, version, record.namespace, plural, body
                ),
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the ledger every ``interval`` (after a failure too) until ``stop``."""

        async def step() -> None:
            await asyncio.to_thread(self.poll_once)

        await supervise.supervise(
            "event reporter",
            step,
            stop,
            interval=self.interval,
            backoff=supervise.Backoff.constant(self.interval),
        )
