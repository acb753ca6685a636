"""Every API resource through which a Pod can come to run an image: the webhook's one list.

A kind the webhook registers for but cannot read is denied as malformed; a kind it can read but
does not register for is never sent, so its images run unjudged (``kubectl debug`` did exactly
that through ``pods/ephemeralcontainers``). So the admission rules (the chart's and the demo
stack's) and the image extractor come from this list, and a test renders the chart and checks
that its rules cover exactly what is here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from affidavit.names import GROUP, VERSION


@dataclass(frozen=True)
class PodSource:
    """One kind that carries a PodSpec, where the API serves it, and where the spec sits."""

    kind: str
    group: str
    version: str
    resource: str
    pod_spec: tuple[str, ...]  # keys under the object, e.g. ("spec", "template", "spec")
    #: Subresources whose request body is the whole object and can add images.
    subresources: tuple[str, ...] = ()

    @property
    def resources(self) -> tuple[str, ...]:
        """The rule's resource names: ``pods`` and ``pods/ephemeralcontainers``."""
        return (self.resource, *(f"{self.resource}/{s}" for s in self.subresources))


_TEMPLATE = ("spec", "template", "spec")

POD_SOURCES: tuple[PodSource, ...] = (
    # `kubectl debug` adds an ephemeral container by UPDATE of pods/ephemeralcontainers, whose
    # body is the whole Pod (kind Pod since 1.22).
    PodSource("Pod", "", "v1", "pods", ("spec",), subresources=("ephemeralcontainers",)),
    PodSource("ReplicationController", "", "v1", "replicationcontrollers", _TEMPLATE),
    PodSource("Deployment", "apps", "v1", "deployments", _TEMPLATE),
    PodSource("ReplicaSet", "apps", "v1", "replicasets", _TEMPLATE),
    PodSource("StatefulSet", "apps", "v1", "statefulsets", _TEMPLATE),
    PodSource("DaemonSet", "apps", "v1", "daemonsets", _TEMPLATE),
    PodSource("Job", "batch", "v1", "jobs", _TEMPLATE),
    PodSource("CronJob", "batch", "v1", "cronjobs", ("spec", "jobTemplate", *_TEMPLATE)),
)

#: The operations the validating webhook judges.
OPERATIONS = ("CREATE", "UPDATE")

_BY_KIND: Mapping[tuple[str, str], PodSource] = {(s.group, s.kind): s for s in POD_SOURCES}


def pod_source(group: str, kind: str, sub_resource: str = "") -> PodSource | None:
    """The entry for a request about ``group``/``kind`` (and subresource), or None: not ours."""
    found = _BY_KIND.get((group, kind))
    if found is None or (sub_resource and sub_resource not in found.subresources):
        return None
    return found


def webhook_rules(
    sources: Sequence[PodSource] = POD_SOURCES, operations: Sequence[str] = OPERATIONS
) -> list[dict[str, Any]]:
    """admissionregistration.k8s.io/v1 rules for ``sources``, one per group/version."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for s in sources:
        grouped.setdefault((s.group, s.version), []).extend(s.resources)
    return [
        {
            "apiGroups": [group],
            "apiVersions": [version],
            "operations": list(operations),
            "resources": resources,
            "scope": "Namespaced",
        }
        for (group, version), resources in grouped.items()
    ]


def covered(rules: Sequence[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """``(group, version, resource)`` triples (``pods/ephemeralcontainers`` included) of rules."""
    return {
        (g, v, r)
        for rule in rules
        for g in rule.get("apiGroups", ())
        for v in rule.get("apiVersions", ())
        for r in rule.get("resources", ())
    }


def pin_rules() -> list[dict[str, Any]]:
    """The mutating webhook's rule: Pods, as created and as updated (a container's image is
    mutable, ``kubectl debug`` adds an ephemeral one); templates are judged, never rewritten."""
    pod = _BY_KIND[("", "Pod")]
    return [
        {
            "apiGroups": [pod.group],
            "apiVersions": [pod.version],
            "operations": list(OPERATIONS),
            "resources": list(pod.resources),
            "scope": "Namespaced",
        }
    ]


def stamp_rules() -> list[dict[str, Any]]:
    """The rule that sends every AccountabilityException written to ``/mutate``, which stamps
    who asked for it (``affidavit.admission.stamp``)."""
    return [
        {
            "apiGroups": [GROUP],
            "apiVersions": [VERSION],
            "operations": list(OPERATIONS),
            "resources": ["accountabilityexceptions"],
            "scope": "Namespaced",
        }
    ]
