"""Which images a workload would run, for every kind that creates Pods.

The webhook must see every image a Pod can start — regular, init and ephemeral containers, and
image volumes (``volumes[].image.reference``, an OCI image mounted as a volume) — or an
unattested image slips in through the one list nobody checked. Each kind keeps its pod template
somewhere else (``kinds.POD_SOURCES`` says where); this module reads it, and fails with the exact
field path when the object does not have the shape the kind promises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from affidavit.admission.kinds import POD_SOURCES
from affidavit.admission.review import MalformedReview

#: Where each kind keeps its PodSpec (a path of keys under the object).
POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {s.kind: s.pod_spec for s in POD_SOURCES}

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class ContainerImage:
    """One image and where it was found.

    ``path`` names the container (``spec.template.spec.containers[0]``) or the image volume
    (``spec.volumes[1]``), ``container`` its name; ``pointer`` is the JSON Pointer of the image
    string itself (``/spec/containers/0/image``, ``/spec/volumes/1/image/reference``).
    """

    path: str
    container: str
    image: str
    pointer: str = ""


@dataclass(frozen=True)
class WorkloadImages:
    containers: tuple[ContainerImage, ...]
    pull_secrets: tuple[str, ...]
    pod_labels: Mapping[str, str]

    @property
    def images(self) -> tuple[str, ...]:
        """Distinct images in the order they appear."""
        return tuple(dict.fromkeys(c.image for c in self.containers))


def is_workload(kind: str) -> bool:
    return kind in POD_SPEC_PATHS


def extract_images(kind: str, obj: Mapping[str, Any], *, uid: str | None = None) -> WorkloadImages:
    """Images and imagePullSecrets of a workload of ``kind``; ``MalformedReview`` on bad shape."""
    path = POD_SPEC_PATHS.get(kind)
    if path is None:
        raise ValueError(f"{kind} is not a workload kind Affidavit checks")

    def bad(detail: str) -> MalformedReview:
        return MalformedReview(detail, uid=uid)

    node: Any = obj
    where = "request.object"
    pointer = ""
    template: Any = None
    for key in path:
        if not isinstance(node, Mapping):
            raise bad(f"{where} is not an object")
        if key == "spec" and where.endswith(".template"):
            template = node
        if node.get(key) is None:
            raise bad(f"{where}.{key} is missing")
        node = node[key]
        where = f"{where}.{key}"
        pointer = f"{pointer}/{key}"
    if not isinstance(node, Mapping):
        raise bad(f"{where} is not an object")
    pod_spec: Mapping[str, Any] = node

    containers: list[ContainerImage] = []
    for list_name in CONTAINER_LISTS:
        items = pod_spec.get(list_name)
        if items is None:
            if list_name == "containers":
                raise bad(f"{where}.containers is missing")
            continue
        if not isinstance(items, list):
            raise bad(f"{where}.{list_name} is not a list")
        for i, item in enumerate(items):
            at = f"{where}.{list_name}[{i}]"
            if not isinstance(item, Mapping):
                raise bad(f"{at} is not an object")
            image = item.get("image")
            if not isinstance(image, str) or not image.strip():
                raise bad(f"{at}.image is missing")
            name = item.get("name")
            containers.append(
                ContainerImage(
                    path=at.removeprefix("request.object."),
                    container=name if isinstance(name, str) else "",
                    image=image.strip(),
                    pointer=f"{pointer}/{list_name}/{i}/image",
                )
            )
    containers += _image_volumes(pod_spec, where, pointer, bad)

    secrets: list[str] = []
    pull = pod_spec.get("imagePullSecrets") or []
    if not isinstance(pull, list):
        raise bad(f"{where}.imagePullSecrets is not a list")
    for i, ref in enumerate(pull):
        name = ref.get("name") if isinstance(ref, Mapping) else None
        if not isinstance(name, str) or not name:
            raise bad(f"{where}.imagePullSecrets[{i}].name is missing")
        if name not in secrets:
            secrets.append(name)

    labels: Mapping[str, str] = {}
    if kind == "Pod":
        meta = obj.get("metadata")
        labels = _labels(meta)
    elif isinstance(template, Mapping):
        labels = _labels(template.get("metadata"))
    return WorkloadImages(tuple(containers), tuple(secrets), labels)


def _image_volumes(
    pod_spec: Mapping[str, Any], where: str, pointer: str, bad: Callable[[str], MalformedReview]
) -> list[ContainerImage]:
    """``volumes[].image.reference``: the kubelet pulls it like a container image."""
    volumes = pod_spec.get("volumes")
    if volumes is None:
        return []
    if not isinstance(volumes, list):
        raise bad(f"{where}.volumes is not a list")
    found: list[ContainerImage] = []
    for i, volume in enumerate(volumes):
        at = f"{where}.volumes[{i}]"
        if not isinstance(volume, Mapping):
            raise bad(f"{at} is not an object")
        source = volume.get("image")
        if source is None:
            continue
        if not isinstance(source, Mapping):
            raise bad(f"{at}.image is not an object")
        image = source.get("reference")
        if not isinstance(image, str) or not image.strip():
            raise bad(f"{at}.image.reference is missing")
        name = volume.get("name")
        found.append(
            ContainerImage(
                path=at.removeprefix("request.object."),
                container=name if isinstance(name, str) else "",
                image=image.strip(),
                pointer=f"{pointer}/volumes/{i}/image/reference",
            )
        )
    return found


def _labels(meta: object) -> Mapping[str, str]:
    if not isinstance(meta, Mapping):
        return {}
    labels = meta.get("labels")
    if not isinstance(labels, Mapping):
        return {}
    return {str(k): str(v) for k, v in labels.items()}
