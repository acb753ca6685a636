"""Tests which images a running Pod is judged by (``admission.recheck``): the digest its status
reports (``imageID``, in the forms kubelets write it), the spec's image where there is none
(no status yet, or a control plane without a kubelet), and every list the webhook reads."""

from __future__ import annotations

from affidavit.admission.recheck import pods_running, running_image

D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
SPEC = "registry.example/shop/api:1.4"


def test_the_digest_comes_from_the_status_the_repository_from_the_spec() -> None:
    assert running_image(SPEC, f"docker-pullable://registry.example/shop/api@{D1}") == (
        f"{SPEC}@{D1}"
    )
    assert running_image(SPEC, f"mirror.example/shop/api@{D1}") == f"{SPEC}@{D1}"
    assert running_image(f"{SPEC}@{D2}", f"registry.example/shop/api@{D1}") == f"{SPEC}@{D1}"


def test_no_registry_digest_no_running_image() -> None:
    assert running_image(SPEC, None) is None
    assert running_image(SPEC, "") is None
    assert running_image(SPEC, D1) is None  # a local image's config id, not a registry digest
    assert running_image(SPEC, "registry.example/shop/api@sha256:short") is None


def test_a_pods_images_pull_secrets_and_what_came_from_the_spec() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {"name": "api-1", "namespace": "shop", "labels": {"app": "api"}},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "registry.example/shop/migrate:7"}],
            "containers": [{"name": "api", "image": SPEC}],
            "volumes": [{"name": "model", "image": {"reference": "registry.example/ml/m:3"}}],
            "imagePullSecrets": [{"name": "pull"}],
        },
        "status": {
            "initContainerStatuses": [{"name": "migrate", "imageID": ""}],
            "containerStatuses": [{"name": "api", "imageID": f"registry.example/shop/api@{D1}"}],
        },
    }
    images, from_spec, secrets, labels = pods_running([pod, pod])
    assert images == (
        "registry.example/shop/migrate:7",
        f"{SPEC}@{D1}",
        "registry.example/ml/m:3",
    )
    assert from_spec == ("registry.example/shop/migrate:7", "registry.example/ml/m:3")
    assert (secrets, labels) == (("pull",), {"app": "api"})
