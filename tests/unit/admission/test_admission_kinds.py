"""The one list of Pod sources: which requests are judged, and the webhook rules made from it."""

from __future__ import annotations

import pytest

from affidavit.admission.kinds import POD_SOURCES, covered, pin_rules, pod_source, webhook_rules
from affidavit.admission.workloads import POD_SPEC_PATHS


def test_the_extractor_reads_every_kind_on_the_list() -> None:
    assert set(POD_SPEC_PATHS) == {s.kind for s in POD_SOURCES}
    assert all(POD_SPEC_PATHS[s.kind] == s.pod_spec for s in POD_SOURCES)


@pytest.mark.parametrize(
    ("group", "kind", "sub", "judged"),
    [
        ("", "Pod", "", True),
        ("", "Pod", "ephemeralcontainers", True),  # kubectl debug: the body is the whole Pod
        ("", "Pod", "status", False),  # cannot change an image
        ("apps", "Deployment", "", True),
        ("apps", "Deployment", "scale", False),
        ("batch", "CronJob", "", True),
        ("example.com", "Deployment", "", False),  # a CRD that happens to share the name
        ("", "Deployment", "", False),
    ],
)
def test_which_requests_are_judged(group: str, kind: str, sub: str, judged: bool) -> None:
    assert (pod_source(group, kind, sub) is not None) is judged


def test_webhook_rules_name_every_resource_and_subresource() -> None:
    assert webhook_rules() == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["pods", "pods/ephemeralcontainers", "replicationcontrollers"],
            "scope": "Namespaced",
        },
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
            "scope": "Namespaced",
        },
        {
            "apiGroups": ["batch"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["jobs", "cronjobs"],
            "scope": "Namespaced",
        },
    ]
    assert ("", "v1", "pods/ephemeralcontainers") in covered(webhook_rules())


def test_only_pods_are_pinned_as_created_and_as_updated() -> None:
    assert pin_rules() == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["pods", "pods/ephemeralcontainers"],
            "scope": "Namespaced",
        }
    ]
