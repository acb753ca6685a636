"""A seeded mutator of AdmissionReviews and the oracle its answers are checked against.

Structure-aware mutations (replace, drop, retype a field; odd uids; image spellings; deep
nesting) and byte-level ones (a repeated key, a lone surrogate escape, truncation, a flipped
byte) of a review of an image no policy-satisfying evidence exists for. The oracle says what no
answer may be: a 5xx, an answer for another uid than the one in the body, or an admission of a
workload whose containers still name the unreviewed image.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from typing import Any

from admission_support import review

from affidavit.admission.kinds import POD_SOURCES, PodSource, pod_source

WORKLOAD_KINDS = ("Deployment", "Pod", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_ODD_VALUES: tuple[Any, ...] = (
    None,
    "",
    0,
    -1,
    2**70,
    1.5e308,
    True,
    [],
    {},
    "x" * 10_000,
    "\u0000",
    "\u202e",
    "ü" * 50,
    ["a", 1, None],
    {"a": {"b": {"c": []}}},
)
_ODD_UIDS = ("", " ", "u" * 300, "ü-uid", "a\nb", "../x", "0" * 64, '"', "\\")


@dataclass(frozen=True)
class Case:
    number: int
    mutation: str
    body: bytes


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


class Mutator:
    """Reviews of ``image`` (its containers the target of most mutations), mutated from ``seed``."""

    def __init__(self, seed: int, image: str) -> None:
        self.rng = random.Random(seed)
        self.image = image

    def case(self, number: int) -> Case:
        rng = self.rng
        kind = rng.choice(WORKLOAD_KINDS) if rng.random() < 0.3 else "Deployment"
        doc = review(
            self.image, uid=f"fuzz-{number}", kind=kind, namespace=f"ns{rng.randint(0, 9)}"
        )
        if kind == "Pod":
            doc["request"]["object"]["spec"] = doc["request"]["object"]["spec"]["template"]["spec"]
        source = pod_source_of(kind)
        doc["request"]["kind"] = {"group": source.group, "version": source.version, "kind": kind}
        doc["request"]["resource"] = {
            "group": source.group,
            "version": source.version,
            "resource": source.resource,
        }
        mutation = rng.choice(
            (
                "replace",
                "drop",
                "retype",
                "uid",
                "image",
                "namespace",
                "nest",
                "operation",
                "repeat",
                "surrogate",
                "truncate",
                "flip",
                "none",
            )
        )
        text: str | None = None
        paths = _paths(doc)[1:]
        if mutation == "replace":
            path = rng.choice(paths)
            _parent(doc, path)[path[-1]] = copy.deepcopy(rng.choice(_ODD_VALUES))
        elif mutation == "drop":
            path = rng.choice([p for p in paths if isinstance(p[-1], str)])
            del _parent(doc, path)[path[-1]]
        elif mutation == "retype":
            path = rng.choice(paths)
            value = _parent(doc, path)[path[-1]]
            _parent(doc, path)[path[-1]] = [value] if rng.random() < 0.5 else {"v": value}
        elif mutation == "uid":
            doc["request"]["uid"] = rng.choice(_ODD_UIDS) + str(number)
        elif mutation == "image":
            spellings = (
                self.image.upper(),
                " " + self.image,
                self.image + "@sha256:" + "0" * 64,
                "docker.io/" + self.image,
                self.image.replace(":", "@", 1),
                self.image + "/" * rng.randint(1, 3),
                self.image * rng.randint(2, 40),
            )
            doc["request"]["object"].setdefault("metadata", {})["annotations"] = {
                "i": rng.choice(spellings)
            }
            _set_image(doc, rng.choice(spellings))
        elif mutation == "namespace":
            doc["request"]["namespace"] = "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz-0123456789.")
                for _ in range(rng.randint(1, 300))
            )
        elif mutation == "nest":
            doc["request"]["object"]["spec"]["x"] = "@nest@"  # nested as text: json.dumps recurses
        elif mutation == "operation":
            doc["request"]["operation"] = rng.choice(
                ("CREATE", "UPDATE", "DELETE", "CONNECT", "create", "")
            )
        text = json.dumps(doc)
        if mutation == "nest":
            depth = rng.choice((50, 99, 101, 1_000, 5_000))
            text = text.replace('"@nest@"', "[" * depth + json.dumps(self.image) + "]" * depth)
        if mutation == "repeat":
            key = rng.choice(('"uid"', '"image"', '"request"', '"namespace"', '"kind"'))
            at = text.find(key + ":")
            if at >= 0:
                end = text.find(",", at)
                text = text[: end + 1] + text[at:end] + "," + text[end + 1 :] if end > 0 else text
        elif mutation == "surrogate":
            at = rng.choice([i for i, ch in enumerate(text) if ch == '"'])
            text = text[: at + 1] + rng.choice(("\\ud800", "\\udfff", "\\ud83d")) + text[at + 1 :]
        body = text.encode()
        if mutation == "truncate":
            body = body[: rng.randint(0, len(body))]
        elif mutation == "flip":
            at = rng.randrange(len(body))
            body = body[:at] + bytes([rng.randrange(256)]) + body[at + 1 :]
        return Case(number, mutation, body)


def _set_image(doc: dict[str, Any], image: str) -> None:
    spec = doc["request"]["object"]["spec"]
    pod = spec.get("template", {}).get("spec", spec) if isinstance(spec, dict) else {}
    for container in pod.get("containers", []):
        container["image"] = image


def names_image(doc: Any, image: str) -> bool:
    """Whether any container list in ``doc`` holds a container whose image is ``image``."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if (
                    key in _CONTAINER_LISTS
                    and isinstance(value, list)
                    and any(isinstance(c, dict) and c.get("image") == image for c in value)
                ):
                    return True
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return False


class _Repeats:
    """Decodes as ``json`` does (last value wins), noting which object repeated which key."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                self.found.append((id(out), k))
            out[k] = v
        return out


def problems(case: Case, status: int, answer: Any, image: str) -> list[str]:
    """What is wrong with the webhook's answer to ``case`` (empty when nothing is)."""
    found: list[str] = []
    if status >= 500:
        found.append(f"HTTP {status}")
    if status != 200:
        return found
    response = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        return [*found, "a 200 without a response"]
    repeats = _Repeats()
    try:
        doc = json.loads(case.body, object_pairs_hook=repeats)
    except (ValueError, RecursionError):
        return [*found, f"a 200 for a body that is not JSON: {response!r:.200}"]
    request = doc.get("request") if isinstance(doc, dict) else None
    if (id(doc), "request") in repeats.found or (id(request), "uid") in repeats.found:
        return [*found, f"a 200 for a body with two uids: {response!r:.200}"]
    uid = request.get("uid") if isinstance(request, dict) else None
    if response.get("uid") != uid:
        found.append(f"answered uid {response.get('uid')!r:.80} for request uid {uid!r:.80}")
    if response.get("allowed") is True and repeats.found:
        found.append(f"admitted a body with a repeated key {repeats.found[0][1]!r}")
    if (
        response.get("allowed") is True
        and isinstance(request, dict)
        and request.get("operation") in ("CREATE", "UPDATE")
        and isinstance(request.get("kind"), dict)
        and _judged_kind(request)
        and names_image(request.get("object"), image)
    ):
        found.append("admitted a workload naming the unreviewed image")
    return found


def pod_source_of(kind: str) -> PodSource:
    """Where the API serves ``kind``: the group, version and resource a real request carries."""
    return next(s for s in POD_SOURCES if s.kind == kind)


def _judged_kind(request: dict[str, Any]) -> bool:
    """Whether the webhook's rules route this group/kind (and subresource) to it at all; the
    apiserver never sends another (``apps/Pod`` is no kind), and the webhook admits those."""
    kind = request["kind"]
    group, name = kind.get("group"), kind.get("kind")
    sub = request.get("subResource") or ""
    if not (isinstance(group, str) and isinstance(name, str) and isinstance(sub, str)):
        return False
    return pod_source(group, name, sub) is not None
