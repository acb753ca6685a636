"""The policy index: every valid policy object, ready to answer "what applies to this image?".

The operator builds it from the CRD objects it watches and publishes it as JSON (a ConfigMap);
the webhook reads the JSON and asks it for the effective policy of each image. One immutable
value shared by both means they cannot disagree about which objects are valid. Invalid objects
are kept out (fail closed: a broken policy never half-applies) and listed in ``errors`` so the
operator can report them in the object's status.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from affidavit.errors import PolicyError
from affidavit.policy.combine import EffectivePolicy, Layer, combine
from affidavit.policy.decision import PolicyRef
from affidavit.policy.lifetime import (
    CLUSTER_SOURCE,
    DEFAULT_EXCEPTION_MAX_DAYS,
    parse_time,
    too_long,
)
from affidavit.policy.model import (
    API_VERSION,
    KIND_EXCEPTION,
    KIND_POLICY,
    KIND_REGION,
    AccountabilityExceptionSpec,
    AccountabilityPolicySpec,
    ExceptionRules,
    NamespaceSelector,
    PresetName,
    RegionPolicySpec,
    Require,
)
from affidavit.policy.presets import expand

S = TypeVar("S", bound=BaseModel)
_CACHE_LIMIT = 4096
_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")
# The cache key holds request strings (image, namespace, labels): a key longer than any valid
# reference and namespace is computed but never kept, so the cache stays under ~4096 x 1 KiB.
_CACHE_KEY_CHARS = 1024


@dataclass(frozen=True)
class Stored(Generic[S]):
    kind: str
    name: str
    spec: S
    generation: int | None = None
    namespace: str | None = None
    created: str | None = None  # metadata.creationTimestamp

    @property
    def ref(self) -> PolicyRef:
        return PolicyRef(self.kind, self.name, self.generation)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "generation": self.generation}
        if self.namespace is not None:
            out["namespace"] = self.namespace
        if self.created is not None:
            out["creationTimestamp"] = self.created
        out["spec"] = self.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        return out


@dataclass(frozen=True)
class ExceptionRef:
    """An active AccountabilityException, as recorded with a decision."""

    namespace: str
    name: str
    reason: str
    incident_id: str
    owner: str
    approvers: tuple[str, ...]
    expires_at: datetime
    created_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def image_repository(ref: str) -> str:
    """``reg:5000/a/b:tag@sha256:..`` -> ``reg:5000/a/b``."""
    base = ref.split("@", 1)[0]
    slash = base.rfind("/")
    colon = base.rfind(":")
    return base[:colon] if colon > slash else base


def glob_any(globs: Sequence[str], value: str) -> bool:
    return any(fnmatchcase(value, g) for g in globs)


def image_matches(globs: Sequence[str], ref: str, *, pinned_tags: bool = False) -> bool:
    """An empty list matches every image; a glob may match the full reference or the repository.

    ``pinned_tags``: a glob naming a tag also covers that tag pinned by digest (``app:1.0``
    covers ``app:1.0@sha256:..``, as the pinning webhook writes it and as anyone may). Right for
    policy coverage, where matching more is stricter; not for exceptions, where it would admit
    every digest of the repository under a tag's name.
    """
    if not globs:
        return True
    if glob_any(globs, ref) or glob_any(globs, image_repository(ref)):
        return True
    return pinned_tags and "@" in ref and glob_any(globs, ref.split("@", 1)[0])


def selector_matches(sel: NamespaceSelector | None, labels: Mapping[str, str]) -> bool:
    if sel is None:
        return True
    if any(labels.get(k) != v for k, v in sel.match_labels.items()):
        return False
    for e in sel.match_expressions:
        present = e.key in labels
        ok = {
            "In": present and labels.get(e.key) in e.values,
            "NotIn": not present or labels.get(e.key) not in e.values,
            "Exists": present,
            "DoesNotExist": not present,
        }[e.operator]
        if not ok:
            return False
    return True


def _validation_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"spec.{loc}: {msg}" if loc else f"spec: {msg}")
    return "; ".join(parts)


def _parse(
    obj: Mapping[str, Any], kind: str, model: type[S], errors: dict[str, str]
) -> Stored[S] | None:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = str(meta.get("name") or "?")
    ns = meta.get("namespace")
    key = f"{kind}/{ns}/{name}" if kind == KIND_EXCEPTION else f"{kind}/{name}"
    if obj.get("kind") != kind:
        errors[key] = f"kind: found {obj.get('kind')!r}; expected {kind!r}"
        return None
    unknown = sorted(str(k) for k in obj if k not in _TOP_LEVEL)
    if unknown:  # e.g. `sepc:`, which would leave an empty spec in force
        errors[key] = f"{', '.join(unknown)}: unknown field (expected {', '.join(_TOP_LEVEL)})"
        return None
    if obj.get("apiVersion") != API_VERSION:
        errors[key] = f"apiVersion: found {obj.get('apiVersion')!r}; expected {API_VERSION!r}"
        return None
    if name == "?":
        errors[key] = "metadata.name: missing"
        return None
    if kind == KIND_EXCEPTION and not ns:
        errors[key] = "metadata.namespace: missing (AccountabilityException is namespaced)"
        return None
    try:
        spec = model.model_validate(obj.get("spec") or {})
    except ValidationError as e:
        errors[key] = _validation_message(e)
        return None
    gen = meta.get("generation")
    created = meta.get("creationTimestamp")
    return Stored(
        kind=kind,
        name=name,
        spec=spec,
        generation=gen if isinstance(gen, int) else None,
        namespace=str(ns) if ns else None,
        created=str(created) if created else None,
    )


def _preset_layers(names: Sequence[PresetName], via: str) -> list[Layer]:
    layers = []
    for name in names:
        for preset, chain in expand(name):
            path = " via ".join(f"preset/{c}" for c in reversed(chain))
            source = f"preset/{preset.name} via " + (f"{path} via {via}" if path else via)
            layers.append(
                Layer(
                    source=source,
                    require=preset.require,
                    controls=preset.controls,
                    evidence=preset.evidence,
                    exceptions=preset.exceptions,
                )
            )
    return layers


class PolicyIndex:
    """Immutable set of valid policies, region policies and exceptions."""

    def __init__(
        self,
        policies: Sequence[Stored[AccountabilityPolicySpec]],
        region_policies: Sequence[Stored[RegionPolicySpec]],
        exceptions: Sequence[Stored[AccountabilityExceptionSpec]],
        errors: Mapping[str, str],
        *,
        exception_max_days: int = DEFAULT_EXCEPTION_MAX_DAYS,
    ) -> None:
        self._exception_max_days = exception_max_days
        self._policies = tuple(sorted(policies, key=lambda s: s.name))
        self._regions = tuple(sorted(region_policies, key=lambda s: s.name))
        self._exceptions = tuple(sorted(exceptions, key=lambda s: (s.namespace or "", s.name)))
        self._errors = dict(sorted(errors.items()))
        self._json = json.dumps(self._payload(), sort_keys=True, separators=(",", ":"))
        self._digest = "sha256:" + hashlib.sha256(self._json.encode()).hexdigest()
        self._cache: dict[tuple[Any, ...], EffectivePolicy | None] = {}

    @classmethod
    def from_objects(
        cls,
        policies: Sequence[Mapping[str, Any]],
        region_policies: Sequence[Mapping[str, Any]],
        exceptions: Sequence[Mapping[str, Any]],
        *,
        exception_max_days: int = DEFAULT_EXCEPTION_MAX_DAYS,
    ) -> PolicyIndex:
        """Parse and validate; invalid objects are left out and named in ``errors``.

        An exception that outlives the cluster's ``exception_max_days`` is invalid: it could
        never admit anything, and its owner must learn that from its status, not from a denial.
        """
        errors: dict[str, str] = {}
        ps = [_parse(o, KIND_POLICY, AccountabilityPolicySpec, errors) for o in policies]
        rs = [_parse(o, KIND_REGION, RegionPolicySpec, errors) for o in region_policies]
        es = [_parse(o, KIND_EXCEPTION, AccountabilityExceptionSpec, errors) for o in exceptions]
        valid_es = []
        for e in es:
            if e is None:
                continue
            problem = too_long(
                parse_time(e.created), e.spec.expires_at, exception_max_days, CLUSTER_SOURCE
            )
            if problem is not None:
                errors[f"{KIND_EXCEPTION}/{e.namespace}/{e.name}"] = problem
                continue
            valid_es.append(e)
        return cls(
            [p for p in ps if p is not None],
            [r for r in rs if r is not None],
            valid_es,
            errors,
            exception_max_days=exception_max_days,
        )

    def _payload(self) -> dict[str, Any]:
        return {
            "version": 1,
            "policies": [p.to_json() for p in self._policies],
            "regionPolicies": [r.to_json() for r in self._regions],
            "exceptions": [e.to_json() for e in self._exceptions],
            "errors": self._errors,
            "exceptionMaxDays": self._exception_max_days,
        }

    def to_json(self) -> str:
        return self._json

    @classmethod
    def from_json(cls, text: str) -> PolicyIndex:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != 1:
                raise ValueError("not a version 1 policy index")

            def objs(key: str, kind: str) -> list[dict[str, Any]]:
                out = []
                for item in data.get(key, []):
                    meta = {k: item[k] for k in ("name", "namespace", "generation") if k in item}
                    if "creationTimestamp" in item:
                        meta["creationTimestamp"] = item["creationTimestamp"]
                    out.append(
                        {
                            "apiVersion": API_VERSION,
                            "kind": kind,
                            "metadata": meta,
                            "spec": item["spec"],
                        }
                    )
                return out

            max_days = data.get("exceptionMaxDays", DEFAULT_EXCEPTION_MAX_DAYS)
            if not isinstance(max_days, int) or max_days < 1:
                raise ValueError(f"exceptionMaxDays {max_days!r} is not a positive integer")
            index = cls.from_objects(
                objs("policies", KIND_POLICY),
                objs("regionPolicies", KIND_REGION),
                objs("exceptions", KIND_EXCEPTION),
                exception_max_days=max_days,
            )
        except (ValueError, KeyError, TypeError) as e:
            raise PolicyError(
                f"the published policy index is unreadable: {e}",
                hint="the operator rewrites it on the next policy change; check its logs",
            ) from e
        if index.errors:
            raise PolicyError(f"the published policy index holds invalid objects: {index.errors}")
        return cls(
            index._policies,
            index._regions,
            index._exceptions,
            data.get("errors", {}),
            exception_max_days=index.exception_max_days,
        )

    @property
    def errors(self) -> dict[str, str]:
        return dict(self._errors)

    @property
    def exception_max_days(self) -> int:
        """The cluster's longest AccountabilityException (days), whatever the policies say."""
        return self._exception_max_days

    def cluster_layer(self) -> Layer:
        """The cluster's own settings as one layer of every effective policy."""
        return Layer(
            source=CLUSTER_SOURCE,
            require=Require(),
            exceptions=ExceptionRules(max_days=self._exception_max_days),
        )

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON: changes whenever any valid object changes."""
        return self._digest

    @property
    def generation(self) -> str:
        """Short cache key (the first 16 hex digits of ``digest``)."""
        return self._digest[7:23]

    @property
    def policies(self) -> tuple[Stored[AccountabilityPolicySpec], ...]:
        return self._policies

    @property
    def region_policies(self) -> tuple[Stored[RegionPolicySpec], ...]:
        return self._regions

    @property
    def exceptions(self) -> tuple[Stored[AccountabilityExceptionSpec], ...]:
        return self._exceptions

    def effective(
        self,
        *,
        cluster: str,
        region: str,
        namespace: str,
        namespace_labels: Mapping[str, str],
        image: str,
    ) -> EffectivePolicy | None:
        """Strictest combination of what applies; None when no AccountabilityPolicy matches.

        A RegionPolicy only tightens the AccountabilityPolicies that match: it names no signers
        and no images, so on its own it brings no image under policy.
        """
        key = (cluster, region, namespace, tuple(sorted(namespace_labels.items())), image)
        if key in self._cache:
            return self._cache[key]
        layers: list[Layer] = []
        for p in self._policies:
            m = p.spec.match
            if not (
                image_matches(m.images, image, pinned_tags=True)
                and (not m.regions or glob_any(m.regions, region))
                and (not m.clusters or glob_any(m.clusters, cluster))
                and selector_matches(m.namespace_selector, namespace_labels)
            ):
                continue
            source = f"{p.kind}/{p.name}"
            layers.append(
                Layer(
                    source=source,
                    require=p.spec.require,
                    mode=p.spec.mode,
                    signers=p.spec.signers,
                    groups=p.spec.groups,
                    exceptions=p.spec.exceptions,
                    policy=p.ref,
                )
            )
            layers += _preset_layers(p.spec.jurisdictions, source)
        result: EffectivePolicy | None = None
        if layers:
            for r in self._regions:
                if glob_any(r.spec.regions, region):
                    source = f"{r.kind}/{r.name}"
                    layers.append(
                        Layer(
                            source=source,
                            require=r.spec.require,
                            groups=r.spec.groups,
                            evidence=r.spec.evidence,
                            policy=r.ref,
                        )
                    )
                    layers += _preset_layers(r.spec.jurisdictions, source)
            layers.append(self.cluster_layer())
            result = combine(layers)
        size = sum(map(len, (cluster, region, namespace, image)))
        size += sum(len(k) + len(v) for k, v in key[3])
        if len(self._cache) < _CACHE_LIMIT and size <= _CACHE_KEY_CHARS:
            self._cache[key] = result
        return result

    def exceptions_for(
        self, namespace: str, kind: str, name: str, image: str, now: datetime
    ) -> list[ExceptionRef]:
        """Active (unexpired) exceptions in ``namespace`` that cover this workload and image."""
        out = []
        for e in self._exceptions:
            s = e.spec
            if e.namespace != namespace or s.expires_at <= now:
                continue
            if s.images and not image_matches(s.images, image):
                continue
            if s.workloads and not any(
                w.kind == kind and fnmatchcase(name, w.name) for w in s.workloads
            ):
                continue
            created = None
            if e.created:
                try:
                    created = datetime.fromisoformat(e.created.replace("Z", "+00:00"))
                except ValueError:
                    created = None
            out.append(
                ExceptionRef(
                    namespace=namespace,
                    name=e.name,
                    reason=s.reason,
                    incident_id=s.incident_id,
                    owner=s.owner,
                    approvers=tuple(s.approvers),
                    expires_at=s.expires_at,
                    created_at=created,
                )
            )
        return out
