"""The CRDs, generated from the policy models, and the check that the chart's copies are current.

Writing the CRD schemas by hand would let the kube-apiserver accept policies the engine rejects
(or the reverse). Instead the pydantic JSON Schema of each spec is turned into a *structural*
OpenAPI v3 schema, as apiextensions.k8s.io/v1 requires: ``$ref``s inlined, ``anyOf``-null
optionals collapsed, no ``additionalProperties`` beside ``properties``, no titles or defaults,
every field typed. ``python -m affidavit.policy.crds --check charts/affidavit/crds`` fails when
the checked-in files differ from what the models produce; ``--write`` regenerates them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from affidavit.policy.model import (
    GROUP,
    KIND_EXCEPTION,
    KIND_POLICY,
    KIND_REGION,
    VERSION,
    AccountabilityExceptionSpec,
    AccountabilityPolicySpec,
    RegionPolicySpec,
)

HEADER = (
    "# Generated from affidavit.policy.model by "
    "`python -m affidavit.policy.crds --write charts/affidavit/crds`. Do not edit.\n"
)
_DROP = {"title", "default", "$defs"}
_READY = '.status.conditions[?(@.type=="Ready")].status'


@dataclass(frozen=True)
class CrdSpec:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    scope: str  # Cluster | Namespaced
    model: type[BaseModel]
    spec_required: bool
    columns: tuple[tuple[str, str, str], ...]  # (name, type, jsonPath)


CRDS: tuple[CrdSpec, ...] = (
    CrdSpec(
        KIND_POLICY,
        "accountabilitypolicies",
        "accountabilitypolicy",
        ("acpol",),
        "Cluster",
        AccountabilityPolicySpec,
        False,
        (("Mode", "string", ".spec.mode"),),
    ),
    CrdSpec(
        KIND_REGION,
        "regionpolicies",
        "regionpolicy",
        ("regpol",),
        "Cluster",
        RegionPolicySpec,
        True,
        (("Regions", "string", ".spec.regions"),),
    ),
    CrdSpec(
        KIND_EXCEPTION,
        "accountabilityexceptions",
        "accountabilityexception",
        ("acexc",),
        "Namespaced",
        AccountabilityExceptionSpec,
        True,
        (("Expires", "string", ".spec.expiresAt"), ("Incident", "string", ".spec.incidentId")),
    ),
)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {node['anyOf']} structurally")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _inline({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "additionalProperties" and (value is False or "properties" in node):
            continue
        if key == "properties":
            out[key] = {name: _inline(v, defs) for name, v in value.items()}
        elif key == "description":
            out[key] = " ".join(str(value).split())  # docstrings wrap; kubectl explain re-wraps
        else:
            out[key] = _inline(value, defs)
    return out


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema as a structural OpenAPI v3 schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    result: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return result


def undescribed(schema: Any, path: str = "") -> list[str]:
    """The paths in ``schema`` that ``kubectl explain`` would show without a description."""
    if not isinstance(schema, dict):
        return []
    out = [] if schema.get("description") else [path or "."]
    for name, sub in schema.get("properties", {}).items():
        if not path and name == "metadata":
            continue  # ObjectMeta: kubectl explain shows its standard documentation
        out += undescribed(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict) and schema["items"].get("properties"):
        out += [p for p in undescribed(schema["items"], f"{path}[]") if p != f"{path}[]"]
    if isinstance(schema.get("additionalProperties"), dict):
        sub = schema["additionalProperties"]
        if sub.get("properties"):
            out += [p for p in undescribed(sub, f"{path}[*]") if p != f"{path}[*]"]
    return out


def structural_problems(schema: Any, path: str = "") -> list[str]:
    """What keeps ``schema`` from being structural (empty when it is)."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return [f"{path or '.'}: not an object"]
    for bad in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "const"):
        if bad in schema:
            problems.append(f"{path or '.'}: uses {bad}")
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path or '.'}: no type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path or '.'}: properties with additionalProperties")
    for name, sub in schema.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}[*]")
    if "items" in schema:
        problems += structural_problems(schema["items"], f"{path}[]")
    return problems


def _described(description: str, **schema: Any) -> dict[str, Any]:
    return {"description": description, **schema}


def _status_schema() -> dict[str, Any]:
    condition = _described(
        "One aspect of the object's state, as the operator last observed it.",
        type="object",
        required=["type", "status"],
        properties={
            "type": _described("What the condition is about, e.g. Ready.", type="string"),
            "status": _described(
                "Whether the condition holds.", type="string", enum=["True", "False", "Unknown"]
            ),
            "reason": _described("A CamelCase word for why, e.g. Invalid.", type="string"),
            "message": _described("What is wrong and how to fix it.", type="string"),
            "lastTransitionTime": _described(
                "When the status last changed.", type="string", format="date-time"
            ),
            "observedGeneration": _described(
                "The generation of the spec this condition describes.",
                type="integer",
                format="int64",
            ),
        },
    )
    return _described(
        "Written by the operator: whether the object is valid and in force.",
        type="object",
        **{"x-kubernetes-preserve-unknown-fields": True},
        properties={
            "observedGeneration": _described(
                "The generation of the spec the operator last processed.",
                type="integer",
                format="int64",
            ),
            "conditions": _described(
                "The operator's conditions; Ready says whether the object is in force.",
                type="array",
                items=condition,
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
            ),
        },
    )


def render(crd: CrdSpec) -> dict[str, Any]:
    """The CustomResourceDefinition object for ``crd``."""
    root: dict[str, Any] = {
        "description": (crd.model.__doc__ or "").split("\n\n")[0].replace("\n", " "),
        "type": "object",
        "properties": {
            "apiVersion": _described(f"Always {GROUP}/{VERSION}.", type="string"),
            "kind": _described(f"Always {crd.kind}.", type="string"),
            "metadata": {"type": "object"},  # the apiserver refuses a description here
            "spec": structural_schema(crd.model),
            "status": _status_schema(),
        },
    }
    if crd.spec_required:
        root["required"] = ["spec"]
    columns = [{"name": n, "type": t, "jsonPath": p} for n, t, p in crd.columns] + [
        {"name": "Ready", "type": "string", "jsonPath": _READY},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{crd.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": crd.kind,
                "listKind": f"{crd.kind}List",
                "plural": crd.plural,
                "singular": crd.singular,
                "shortNames": list(crd.short_names),
                "categories": ["affidavit"],
            },
            "scope": crd.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def render_all() -> dict[str, str]:
    """File name -> YAML text, for every CRD."""
    return {
        f"{crd.plural}.{GROUP}.yaml": HEADER
        + yaml.safe_dump(render(crd), sort_keys=False, width=100)
        for crd in CRDS
    }


def stale(directory: Path) -> list[str]:
    """Names of the files in ``directory`` that are missing or differ from the models."""
    out = []
    for name, text in render_all().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m affidavit.policy.crds")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="fail when the files are stale")
    action.add_argument("--write", action="store_true", help="regenerate the files")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.write:
        args.directory.mkdir(parents=True, exist_ok=True)
        for name, text in render_all().items():
            (args.directory / name).write_text(text, encoding="utf-8")
        return 0
    names = stale(args.directory)
    if names:
        print(
            f"stale CRDs in {args.directory}: {', '.join(names)}; regenerate them with "
            f"`python -m affidavit.policy.crds --write {args.directory}`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
