"""The policy index: every valid policy object, ready to answer "what applies to this image?".

The operator builds it from the CRD objects it watches and publishes it as JSON (a ConfigMap);
the webhook reads the JSON and asks it for the effective policy of each image. One immutable
value shared by both means they cannot disagree about which objects are valid. Invalid objects
are kept out (fail closed: a broken policy never half-applies) and listed in ``errors`` so the
operator can report them in the object's status; a policy in force that an edit breaks stays in
force as it was (``_carried``), since leaving it out would leave its images unmatched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from affidavit.attestations.reference import ImageReference, canonical_glob
from affidavit.errors import PolicyError
from affidavit.names import REQUESTED_BY_ANNOTATION, REQUESTED_BY_GROUPS_ANNOTATION
from affidavit.policy.combine import EffectivePolicy, Layer, combine
from affidavit.policy.lifetime import (
    CLUSTER_SOURCE,
    DEFAULT_EXCEPTION_MAX_DAYS,
    parse_time,
    too_long,
)
from affidavit.policy.matching import covers, covers_any_tag, glob_any, selector_matches
from affidavit.policy.model import (
    API_VERSION,
    KIND_EXCEPTION,
    KIND_POLICY,
    KIND_REGION,
    AccountabilityExceptionSpec,
    AccountabilityPolicySpec,
    ExceptionRules,
    PresetName,
    RegionPolicySpec,
    Require,
)
from affidavit.policy.presets import expand
from affidavit.policy.stored import ExceptionRef, Stored, left_out, object_key, parse_object

_CACHE_LIMIT = 4096
# The cache key holds request strings (image, namespace, labels): a key longer than any valid
# reference and namespace is computed but never kept, so the cache stays under ~4096 x 1 KiB.
_CACHE_KEY_CHARS = 1024


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


def _carried(
    kind: str,
    objects: Sequence[Mapping[str, Any]],
    errors: dict[str, str],
    in_force: Sequence[Stored[Any]],
) -> list[Stored[Any]]:
    """The version in force of each of ``objects`` that no longer parses, where the index in
    force holds the same object (its name and creationTimestamp: not one deleted and made again).

    An edit that breaks a policy in force must not take it out of force: its images would match
    no policy, which the default ``unmatchedImages: Warn`` admits, so a typo (or a field the
    schema allows and the model refuses) would switch enforcement off. The object's error says
    which generation stays in force. Exceptions are never carried: they only admit, so a broken
    one leaves the index, as before.
    """
    by_name = {s.name: s for s in in_force}
    kept: list[Stored[Any]] = []
    for obj in objects:
        key = object_key(kind, obj)
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        old = by_name.get(str(meta.get("name")))
        if key not in errors or old is None or old.created is None:
            continue
        if old.created != meta.get("creationTimestamp"):
            continue
        kept.append(old)
        errors[key] += (
            f"; generation {old.generation}, its last valid spec, stays in force until this is "
            "fixed"
        )
    return kept


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
        # Image globs read with the reference grammar once, here (``acme/*`` is docker.io/acme/*).
        self._policy_globs = {
            p.name: tuple(canonical_glob(g) for g in p.spec.match.images) for p in self._policies
        }
        self._exception_globs = {
            (e.namespace, e.name): tuple(canonical_glob(g) for g in e.spec.images)
            for e in self._exceptions
        }

    @classmethod
    def from_objects(
        cls,
        policies: Sequence[Mapping[str, Any]],
        region_policies: Sequence[Mapping[str, Any]],
        exceptions: Sequence[Mapping[str, Any]],
        *,
        exception_max_days: int = DEFAULT_EXCEPTION_MAX_DAYS,
        last_good: PolicyIndex | None = None,
        leave_out_unknown_fields: bool = False,
    ) -> PolicyIndex:
        """Parse and validate; invalid objects are left out and named in ``errors``.

        ``leave_out_unknown_fields``, for objects the API server stored (or an index built from
        them): a policy or region policy whose only faults are fields this version does not
        know stays in force without them, and its error names them (``stored.parse_object``).
        Never an exception: it only admits, and a field it does not know may narrow it.

        An exception that outlives the cluster's ``exception_max_days`` is invalid: it could
        never admit anything, and its owner must learn that from its status, not from a denial.

        A policy or region policy that ``last_good`` (the index in force) holds and that an edit
        has made invalid stays in force as it was there (``_carried``).
        """
        errors: dict[str, str] = {}
        ignored: dict[str, str] | None = {} if leave_out_unknown_fields else None
        ps = [
            parse_object(o, KIND_POLICY, AccountabilityPolicySpec, errors, ignored=ignored)
            for o in policies
        ]
        rs = [
            parse_object(o, KIND_REGION, RegionPolicySpec, errors, ignored=ignored)
            for o in region_policies
        ]
        if last_good is not None:
            ps += _carried(KIND_POLICY, policies, errors, last_good.policies)
            rs += _carried(KIND_REGION, region_policies, errors, last_good.region_policies)
        errors.update(ignored or {})  # in force, without what they name
        es = [
            parse_object(o, KIND_EXCEPTION, AccountabilityExceptionSpec, errors) for o in exceptions
        ]
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
                    if "requestedBy" in item:
                        meta["annotations"] = {REQUESTED_BY_ANNOTATION: item["requestedBy"]}
                        if "requestedByGroups" in item:
                            meta["annotations"][REQUESTED_BY_GROUPS_ANNOTATION] = json.dumps(
                                item["requestedByGroups"]
                            )
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
                leave_out_unknown_fields=True,  # an index a newer operator published
            )
        except (ValueError, KeyError, TypeError) as e:
            raise PolicyError(
                f"the published policy index is unreadable: {e}",
                hint="the operator rewrites it on the next policy change; check its logs",
            ) from e
        without = {k: v for k, v in index.errors.items() if left_out(v)}
        invalid = {k: v for k, v in index.errors.items() if k not in without}
        if invalid:
            raise PolicyError(f"the published policy index holds invalid objects: {invalid}")
        return cls(
            index._policies,
            index._regions,
            index._exceptions,
            {**data.get("errors", {}), **without},
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
        and no images, so on its own it brings no image under policy. ``image`` is matched in its
        canonical form (``InputError`` when it is not an image reference).
        """
        ref = ImageReference.parse(image)
        key = (cluster, region, namespace, tuple(sorted(namespace_labels.items())), str(ref))
        if key in self._cache:
            return self._cache[key]
        layers: list[Layer] = []
        scoped = [
            p
            for p in self._policies
            if (not p.spec.match.regions or glob_any(p.spec.match.regions, region))
            and (not p.spec.match.clusters or glob_any(p.spec.match.clusters, cluster))
            and selector_matches(p.spec.match.namespace_selector, namespace_labels)
        ]
        matched = [p for p in scoped if covers(self._policy_globs[p.name], ref, pinned_tags=True)]
        # A digest no glob names is still under its repository's tag globs. Not also where a
        # repository-wide policy names it: a tag written beside a digest is the requester's
        # word, so that would hold honest digest deployments (GitOps image automation) to
        # every tag's policy while `app:dev@sha256:<prod>` still escaped; tag policies of one
        # repository are a convenience, not a boundary (README).
        if not matched:
            matched = [p for p in scoped if covers_any_tag(self._policy_globs[p.name], ref)]
        for p in matched:
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

    def exception_globs(self, namespace: str, name: str) -> tuple[str, ...]:
        """The image globs of exception ``namespace/name``, as the index reads them."""
        return self._exception_globs.get((namespace, name), ())

    def exceptions_for(
        self, namespace: str, kind: str, name: str, image: str, now: datetime
    ) -> list[ExceptionRef]:
        """Active (unexpired) exceptions in ``namespace`` that cover this workload and image."""
        ref = ImageReference.parse(image)
        out = []
        for e in self._exceptions:
            s = e.spec
            if e.namespace != namespace or s.expires_at <= now:
                continue
            if s.images and not covers(self._exception_globs[(e.namespace, e.name)], ref):
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
                    requested_by=e.requested_by,
                    requested_groups=e.requested_groups,
                )
            )
        return out
