"""Whether the API server serves the CRD schemas this operator was built with.

``helm upgrade`` does not update what a chart keeps in ``crds/``; Helm installs those once and
leaves them. An upgrade that skips ``kubectl apply --server-side -f charts/affidavit/crds/``
runs the new operator and webhook against the old schemas, and the API server then drops every
field the old schema lacks from each object it stores (a client that does not ask for strict
field validation gets at most a warning). A policy's newer rule (``certifiedSource: false``,
``exceptions.repositoryOnly: true``) is then silently not in force, stricter or laxer than its
author wrote.

The served schemas are read from the API server's OpenAPI v3 document for the group, which any
authenticated client may read (no RBAC on CustomResourceDefinitions), and compared field by
field with the schemas this version generates (``policy.crds``). Fields the server lacks make
the operator not ready, naming them and the command that installs the CRDs: a rollout of the new
version stops there, while the old Pods keep serving. A document that cannot be read says
nothing (a cluster may restrict ``/openapi``): the check is a guard, not a dependency.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from affidavit.names import GROUP, VERSION
from affidavit.operator import kube
from affidavit.policy.crds import CRDS, structural_schema

log = logging.getLogger(__name__)

OPENAPI_PATH = f"/openapi/v3/apis/{GROUP}/{VERSION}"
FIX = (
    "kubectl apply --server-side -f charts/affidavit/crds/ (helm upgrade leaves a chart's "
    "crds/ as first installed)"
)
_SHOWN = 3


def fields(schema: Any, path: str = "") -> Iterator[str]:
    """Every field path a structural schema names (``a.b``, ``a[].b``, ``a{}.b``)."""
    if not isinstance(schema, Mapping):
        return
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for name, sub in props.items():
            here = f"{path}.{name}" if path else str(name)
            yield here
            yield from fields(sub, here)
    if isinstance(schema.get("items"), Mapping):
        yield from fields(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from fields(schema["additionalProperties"], f"{path}{{}}")
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or ():
            yield from fields(sub, path)


@cache
def _expected(kind: str) -> tuple[str, ...]:
    """The ``spec`` fields this version defines for ``kind``, sorted (built once: the schema is
    generated from the models, and the check runs every few seconds)."""
    crd = next(c for c in CRDS if c.kind == kind)
    return tuple(sorted(fields(structural_schema(crd.model))))


def missing_fields(document: Mapping[str, Any]) -> dict[str, list[str]]:
    """Kind -> the ``spec`` fields this version defines that ``document`` (the group's served
    OpenAPI v3) lacks; a kind the document does not serve at all lacks its whole spec."""
    schemas = (document.get("components") or {}).get("schemas") or {}
    group = ".".join(reversed(GROUP.split(".")))
    out: dict[str, list[str]] = {}
    for crd in CRDS:
        served = schemas.get(f"{group}.{VERSION}.{crd.kind}")
        spec = ((served or {}).get("properties") or {}).get("spec")
        have = set(fields(spec)) if isinstance(spec, Mapping) else set()
        lacking = [f for f in _expected(crd.kind) if f not in have]
        if lacking:
            out[crd.kind] = lacking
    return out


def describe(lacking: Mapping[str, list[str]]) -> str:
    """The readiness reason for ``lacking`` (see ``missing_fields``)."""
    parts = []
    for kind, paths in lacking.items():
        shown = ", ".join(f"spec.{p}" for p in paths[:_SHOWN])
        more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
        parts.append(f"{kind} has no {shown}{more}")
    return (
        "the API server serves older Affidavit CRDs than this operator's: "
        + "; ".join(parts)
        + "; it drops those fields from every object it stores, so what they say is not in "
        f"force: {FIX}"
    )


def check(api: kube.Kube) -> str | None:
    """Why the served CRDs are older than this operator's, or None (also when unreadable)."""
    client = api.api
    try:
        method, url, headers, body, _ = client.param_serialize(
            "GET", OPENAPI_PATH, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )  # fmt: skip
        response = client.call_api(method, url, header_params=headers, body=body,
                                   _request_timeout=30)  # fmt: skip
        response.read()
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        document = json.loads(response.data)
    except (ApiException, urllib3.exceptions.HTTPError, ValueError) as e:
        log.warning("cannot read %s to compare the CRDs: %s", OPENAPI_PATH, e)
        return None
    if not isinstance(document, Mapping):
        return None
    lacking = missing_fields(document)
    return describe(lacking) if lacking else None
