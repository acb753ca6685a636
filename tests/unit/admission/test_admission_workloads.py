"""Image extraction for every workload kind: containers, init and ephemeral containers, image
volumes, pull secrets, the JSON Pointer of each image (what the pinning webhook rewrites), and
the exact field path named when an object is malformed."""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.admission.review import MalformedReview
from affidavit.admission.workloads import POD_SPEC_PATHS, extract_images

POD_SPEC: dict[str, Any] = {
    "initContainers": [{"name": "migrate", "image": "reg.example/app/migrate:1"}],
    "containers": [
        {"name": "web", "image": "reg.example/app/web:1"},
        {"name": "sidecar", "image": "reg.example/app/proxy@sha256:" + "c" * 64},
        {"name": "web2", "image": "reg.example/app/web:1"},
    ],
    "ephemeralContainers": [{"name": "debug", "image": "reg.example/tools/debug:2"}],
    "volumes": [
        {"name": "scratch", "emptyDir": {}},
        {
            "name": "model",
            "image": {"reference": "reg.example/ml/weights:7", "pullPolicy": "Always"},
        },
    ],
    "imagePullSecrets": [{"name": "pull-a"}, {"name": "pull-b"}, {"name": "pull-a"}],
}


def _template(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}}, "spec": spec}


def wrap(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind == "Pod":
        return {"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": spec}
    if kind == "CronJob":
        return {
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {"spec": {"template": _template(spec)}},
            }
        }
    return {"spec": {"template": _template(spec)}}


PREFIX = {
    "Pod": "spec",
    "Deployment": "spec.template.spec",
    "ReplicaSet": "spec.template.spec",
    "StatefulSet": "spec.template.spec",
    "DaemonSet": "spec.template.spec",
    "Job": "spec.template.spec",
    "ReplicationController": "spec.template.spec",
    "CronJob": "spec.jobTemplate.spec.template.spec",
}


def test_every_pod_creating_kind_is_covered() -> None:
    assert set(POD_SPEC_PATHS) == set(PREFIX)


@pytest.mark.parametrize("kind", sorted(PREFIX))
def test_extracts_every_container_list_and_pull_secrets(kind: str) -> None:
    got = extract_images(kind, wrap(kind, POD_SPEC))
    p = PREFIX[kind]
    assert [(c.path, c.container, c.image) for c in got.containers] == [
        (f"{p}.initContainers[0]", "migrate", "reg.example/app/migrate:1"),
        (f"{p}.containers[0]", "web", "reg.example/app/web:1"),
        (f"{p}.containers[1]", "sidecar", "reg.example/app/proxy@sha256:" + "c" * 64),
        (f"{p}.containers[2]", "web2", "reg.example/app/web:1"),
        (f"{p}.ephemeralContainers[0]", "debug", "reg.example/tools/debug:2"),
        (f"{p}.volumes[1]", "model", "reg.example/ml/weights:7"),
    ]
    q = "/" + p.replace(".", "/")
    assert [c.pointer for c in got.containers] == [
        f"{q}/initContainers/0/image",
        f"{q}/containers/0/image",
        f"{q}/containers/1/image",
        f"{q}/containers/2/image",
        f"{q}/ephemeralContainers/0/image",
        f"{q}/volumes/1/image/reference",
    ]
    assert got.images == (
        "reg.example/app/migrate:1",
        "reg.example/app/web:1",
        "reg.example/app/proxy@sha256:" + "c" * 64,
        "reg.example/tools/debug:2",
        "reg.example/ml/weights:7",
    )
    assert got.pull_secrets == ("pull-a", "pull-b")
    assert got.pod_labels == {"app": "web"}


@pytest.mark.parametrize(
    ("kind", "obj", "message"),
    [
        ("Pod", {"metadata": {}}, "malformed AdmissionReview: request.object.spec is missing"),
        (
            "Deployment",
            {"spec": {}},
            "malformed AdmissionReview: request.object.spec.template is missing",
        ),
        (
            "CronJob",
            {"spec": {"jobTemplate": {"spec": {"template": {}}}}},
            "malformed AdmissionReview: request.object.spec.jobTemplate.spec.template.spec is missing",
        ),
        (
            "Deployment",
            {"spec": {"template": {"spec": {"initContainers": []}}}},
            "malformed AdmissionReview: request.object.spec.template.spec.containers is missing",
        ),
        (
            "Job",
            {"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}},
            "malformed AdmissionReview: request.object.spec.template.spec.containers[0].image is missing",
        ),
        (
            "Pod",
            {"spec": {"containers": "web"}},
            "malformed AdmissionReview: request.object.spec.containers is not a list",
        ),
        (
            "StatefulSet",
            {"spec": {"template": "x"}},
            "malformed AdmissionReview: request.object.spec.template is not an object",
        ),
        (
            "Pod",
            {"spec": {"containers": [{"image": "a.example/b:1"}], "imagePullSecrets": [{}]}},
            "malformed AdmissionReview: request.object.spec.imagePullSecrets[0].name is missing",
        ),
        (
            "Pod",
            {"spec": {"containers": [{"image": "a.example/b:1"}], "volumes": {"v": {}}}},
            "malformed AdmissionReview: request.object.spec.volumes is not a list",
        ),
        (
            "Deployment",
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"image": "a.example/b:1"}],
                            "volumes": [{"name": "v", "image": {"pullPolicy": "Always"}}],
                        }
                    }
                }
            },
            "malformed AdmissionReview: request.object.spec.template.spec.volumes[0].image.reference is missing",
        ),
        (
            "Pod",
            {"spec": {"containers": [{"image": "a.example/b:1"}], "volumes": [{"image": "x"}]}},
            "malformed AdmissionReview: request.object.spec.volumes[0].image is not an object",
        ),
    ],
)
def test_malformed_workloads_name_the_field(kind: str, obj: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedReview) as e:
        extract_images(kind, obj, uid="u-1")
    assert e.value.message == message
    assert e.value.uid == "u-1"
