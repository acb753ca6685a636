"""Policy objects as the index holds them: parsed strictly, or refused with the field at fault.

The operator's status conditions and the webhook's /readyz both quote these refusals, so an
object that does not parse names its kind, name and field instead of half-applying.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from affidavit.names import REQUESTED_BY_ANNOTATION, REQUESTED_BY_GROUPS_ANNOTATION
from affidavit.policy.decision import PolicyRef
from affidavit.policy.model import API_VERSION, KIND_EXCEPTION

S = TypeVar("S", bound=BaseModel)
_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")
#: The longest stamped name read (a ServiceAccount's is at most 339 characters); a longer one
#: is no stamp (under ``separateRequester``, admits nothing), never cut to another name.
MAX_REQUESTER = 1024
MAX_GROUPS = 1024


@dataclass(frozen=True)
class Stored(Generic[S]):
    """A valid policy object: its identity and its strictly parsed spec."""

    kind: str
    name: str
    spec: S
    generation: int | None = None
    namespace: str | None = None
    created: str | None = None  # metadata.creationTimestamp
    #: An exception's stamped requester (the API server's name for whoever wrote its spec).
    requested_by: str | None = None
    #: And the groups it authenticated them in (None: not stamped, or stamped before groups were).
    requested_groups: tuple[str, ...] | None = None

    @property
    def ref(self) -> PolicyRef:
        return PolicyRef(self.kind, self.name, self.generation)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "generation": self.generation}
        if self.namespace is not None:
            out["namespace"] = self.namespace
        if self.created is not None:
            out["creationTimestamp"] = self.created
        if self.requested_by is not None:
            out["requestedBy"] = self.requested_by
            if self.requested_groups is not None:
                out["requestedByGroups"] = list(self.requested_groups)
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
    requested_by: str | None = None  # None: not stamped (written while the webhook did not run)
    #: The requester's groups as stamped (None: not known).
    requested_groups: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _validation_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"spec.{loc}: {msg}" if loc else f"spec: {msg}")
    return "; ".join(parts)


def object_key(kind: str, obj: Mapping[str, Any]) -> str:
    """The key ``PolicyIndex.errors`` uses: ``Kind/name`` or ``Kind/namespace/name``."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = str(meta.get("name") or "?")
    return f"{kind}/{meta.get('namespace')}/{name}" if kind == KIND_EXCEPTION else f"{kind}/{name}"


#: What an object's status says of spec fields this version does not know and left out.
IGNORED_NOTE = (
    "a field this version of Affidavit does not know, left out: the rest of the spec is in "
    "force. The CRDs are newer than the operator (as after `helm rollback`): upgrade the "
    "operator, or remove the field"
)


def left_out(error: str) -> bool:
    """Whether an object's error says it is in force without fields it holds (``IGNORED_NOTE``)
    rather than invalid."""
    return error.endswith(IGNORED_NOTE)


def _without(spec: Any, locs: Sequence[tuple[Any, ...]]) -> Any:
    """A deep copy of ``spec`` without the fields at ``locs`` (pydantic's error locations)."""
    copied = copy.deepcopy(spec)
    for loc in locs:
        node = copied
        for step in loc[:-1]:
            node = node[step] if isinstance(node, (dict, list)) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(loc[-1], None)
    return copied


def parse_object(
    obj: Mapping[str, Any],
    kind: str,
    model: type[S],
    errors: dict[str, str],
    *,
    ignored: dict[str, str] | None = None,
) -> Stored[S] | None:
    """``obj`` as a Stored spec, or None with the reason in ``errors`` under the object's key.

    With ``ignored`` (objects read from the API server), a spec whose only faults are fields
    unknown here is parsed without them, and they are named in ``ignored``. The API server
    prunes fields its CRD schema does not declare (a typo never reaches us), so an unknown field
    means the CRD is newer than this code, as after a ``helm rollback`` (Helm never downgrades
    ``crds/``): leaving the whole policy out would switch its enforcement off (its images then
    match no policy), where the rest of it still holds."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = str(meta.get("name") or "?")
    ns = meta.get("namespace")
    key = object_key(kind, obj)
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
        unknown_only = all(err["type"] == "extra_forbidden" for err in e.errors())
        if ignored is None or not unknown_only:
            errors[key] = _validation_message(e)
            return None
        locs = [tuple(err["loc"]) for err in e.errors()]
        try:
            spec = model.model_validate(_without(obj.get("spec") or {}, locs))
        except ValidationError as again:
            errors[key] = _validation_message(again)
            return None
        fields = ", ".join("spec." + ".".join(str(p) for p in loc) for loc in locs)
        ignored[key] = f"{fields}: {IGNORED_NOTE}"
    gen = meta.get("generation")
    created = meta.get("creationTimestamp")
    annotations = meta.get("annotations")
    stamped = annotations.get(REQUESTED_BY_ANNOTATION) if isinstance(annotations, Mapping) else None
    requester = (
        stamped
        if kind == KIND_EXCEPTION and isinstance(stamped, str) and 0 < len(stamped) <= MAX_REQUESTER
        else None
    )
    return Stored(
        kind=kind,
        name=name,
        spec=spec,
        generation=gen if isinstance(gen, int) else None,
        namespace=str(ns) if ns else None,
        created=str(created) if created else None,
        requested_by=requester,
        requested_groups=(
            _groups(annotations.get(REQUESTED_BY_GROUPS_ANNOTATION))
            if requester is not None and isinstance(annotations, Mapping)
            else None
        ),
    )


def _groups(value: Any) -> tuple[str, ...] | None:
    """The stamped groups (a JSON array of strings, at most ``MAX_GROUPS`` of at most
    ``MAX_REQUESTER`` characters), or None: absent or not that shape (the webhook writes it, a
    writer who edits it has it put back, so a bad one was written while the webhook did not
    run, and counts as unknown)."""
    if not isinstance(value, str) or len(value) > MAX_GROUPS * (MAX_REQUESTER + 4):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if (
        not isinstance(parsed, list)
        or len(parsed) > MAX_GROUPS
        or not all(isinstance(g, str) and len(g) <= MAX_REQUESTER for g in parsed)
    ):
        return None
    return tuple(parsed)
