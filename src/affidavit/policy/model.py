"""The three policy CRDs as strict models: the one definition both the CRDs and the engine use.

The CRD schemas in charts/affidavit/crds/ are generated from these models (see ``crds.py``), so
what the kube-apiserver accepts and what the engine understands cannot drift apart. Specs are
parsed strictly: an unknown field is an error, because a typo in a policy must never silently
weaken it. Wire names are camelCase, as Kubernetes users expect.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP = "affidavit.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Mode = Literal["Enforce", "Warn", "Audit"]
FailurePolicy = Literal["Fail", "Ignore"]
PresetName = Literal[
    "soc2", "pci-dss", "us-fedramp-moderate", "eu", "eu-ai-act-high-risk", "slsa-source-l4"
]
AppliesTo = Literal["ai", "all"]
LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


def _cel(*rules: tuple[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class SpecModel(BaseModel):
    """Strict, immutable, camelCase on the wire."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class LabelSelectorRequirement(SpecModel):
    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "self.operator in ['Exists', 'DoesNotExist'] || "
                "(has(self.values) && size(self.values) > 0)",
                "operators In and NotIn need at least one value",
            )
        )
    )

    @model_validator(mode="after")
    def _values(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError("operators In and NotIn need at least one value")
        return self


class NamespaceSelector(SpecModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=32)


#: Region names are lower-case letters, digits and ``-`` (eu-west-1, europe-west1, westeurope),
#: so a glob with any other character (``EU-*``, ``eu_west``) can match no region a cluster has.
REGION_GLOB = re.compile(r"[a-z0-9*?\[\]!-]+")


def check_region_globs(globs: list[str]) -> list[str]:
    """Refuse a region glob that can match no region name (a policy that silently says nothing)."""
    for i, glob in enumerate(globs):
        if REGION_GLOB.fullmatch(glob) is None:
            raise ValueError(
                f"regions[{i}] {glob!r} can match no region: region names are lower-case "
                "letters, digits and '-' (e.g. eu-west-1), globs may add * ? [...]"
            )
    return globs


RegionGlobs = Annotated[list[str], AfterValidator(check_region_globs)]


class Match(SpecModel):
    """Which requests a policy governs. An omitted or empty list of globs matches everything."""

    images: list[str] = Field(default_factory=list, description="image reference globs")
    namespace_selector: NamespaceSelector | None = None
    regions: RegionGlobs = Field(default_factory=list, description="cluster region globs")
    clusters: list[str] = Field(default_factory=list, description="cluster name globs")


class KeySignerSpec(SpecModel):
    name: str = Field(min_length=1)
    public_key: str = Field(
        pattern=r"^\s*-----BEGIN PUBLIC KEY-----",
        description="PEM public key (ECDSA P-256, Ed25519)",
    )


class KeylessSignerSpec(SpecModel):
    name: str = Field(min_length=1)
    issuer: str = Field(pattern=r"^https://", description="OIDC issuer URL")
    identity: str = Field(min_length=1, description="certificate SAN (email or URI)")


def _list_map(key: str) -> dict[str, Any]:
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]}


class Signers(SpecModel):
    keys: list[KeySignerSpec] = Field(default_factory=list, json_schema_extra=_list_map("name"))
    keyless: list[KeylessSignerSpec] = Field(
        default_factory=list, json_schema_extra=_list_map("name")
    )

    @model_validator(mode="after")
    def _unique(self) -> Signers:
        for what, names in (
            ("keys", [k.name for k in self.keys]),
            ("keyless", [k.name for k in self.keyless]),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"signers.{what}: duplicate name {', '.join(dup)}")
        return self


class ProvenanceRequirement(SpecModel):
    required: bool = True
    max_age_days: int | None = Field(default=None, ge=1)


class TierRequirement(SpecModel):
    """Review needed by the changes that touch a tier (``*`` = every tier)."""

    approvals: int = Field(default=0, ge=0, description="approvals on the final revision")
    independent_approvals: int = Field(
        default=0, ge=0, description="approvals by neither the author, a committer, nor a bot"
    )
    human_approvals: int = Field(default=0, ge=0, description="approvals by non-bot reviewers")
    reviewer_groups: list[str] = Field(
        default_factory=list,
        description="an approving reviewer must belong to one of these groups",
    )
    security_review: bool = Field(
        default=False, description="an approval by a member of the group `security`"
    )
    applies_to: AppliesTo = Field(
        default="ai", description="ai: only AI-involved changes; all: every change"
    )

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!has(self.independentApprovals) || !has(self.approvals) || "
                "self.approvals == 0 || self.independentApprovals <= self.approvals",
                "independentApprovals cannot exceed approvals (independent approvals are "
                "approvals); leave approvals at 0 to require only independent ones",
            )
        )
    )

    @model_validator(mode="after")
    def _consistent(self) -> TierRequirement:
        if self.approvals and self.independent_approvals > self.approvals:
            raise ValueError(
                "independentApprovals cannot exceed approvals (independent approvals are "
                "approvals); leave approvals at 0 to require only independent ones"
            )
        return self


class Require(SpecModel):
    """What a policy requires (an AccountabilityPolicy's omissions take secure defaults)."""

    provenance: ProvenanceRequirement | None = Field(
        default=None,
        description="signed ai-provenance/v1; omitted in an AccountabilityPolicy = required",
    )
    tiers: dict[str, TierRequirement] = Field(default_factory=dict, max_length=32)
    allowed_tools: list[str] | None = Field(
        default=None, description="AI tool name globs; omitted = any tool"
    )
    require_tool_details: bool = Field(
        default=False, description="AI-involved changes must name tool, model and version"
    )
    treat_unknown_as_ai: bool = Field(
        default=False, description="commits with no AI declaration count as AI-involved"
    )
    owner_label: str | None = Field(default=None, pattern=LABEL_KEY)
    escalation_label: str | None = Field(default=None, pattern=LABEL_KEY)
    independent_release_approver: bool = Field(
        default=False,
        description="AI-involved changes must be merged by neither their author nor a reviewer",
    )
    consistent_revision: bool | None = Field(
        default=None,
        description="provenance, review and build name one source revision; omitted in an "
        "AccountabilityPolicy = true",
    )
    tier_map_digest: str | None = Field(
        default=None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="the provenance must have classified files with this trust-tier map "
        "(its collector.tiersDigest)",
    )
    require_digest: bool = False
    failure_policy: FailurePolicy | None = Field(
        default=None,
        description="when the registry is unreachable; omitted in an AccountabilityPolicy = "
        "Fail, and Fail beats Ignore",
    )
    retention_days: int | None = Field(default=None, ge=1)


def with_policy_defaults(require: Require) -> Require:
    """An AccountabilityPolicy's ``require`` with the secure defaults of what it omits.

    A matched policy that says nothing about provenance still requires it (an image with no
    attestations at all must not pass), the review must be for the revision the provenance
    describes, and an unreachable registry denies: each only when the policy does not say
    otherwise. In the strictest-wins merge the default counts like a written value, so one
    policy's ``Ignore`` or ``required: false`` cannot weaken another policy that is silent.
    """
    fill: dict[str, Any] = {}
    if require.provenance is None:
        fill["provenance"] = ProvenanceRequirement()
    if require.consistent_revision is None:
        fill["consistent_revision"] = True
    if require.failure_policy is None:
        fill["failure_policy"] = "Fail"
    return require.model_copy(update=fill) if fill else require


class ExceptionRules(SpecModel):
    max_days: int = Field(ge=1, description="longest an AccountabilityException may last")


class EvidenceRules(SpecModel):
    retention_days: int | None = Field(default=None, ge=1)
    residency: str | None = Field(default=None, description="where evidence must be stored")
    pseudonymous_identities: bool = False


class AccountabilityPolicySpec(SpecModel):
    mode: Mode = "Enforce"
    match: Match = Field(default_factory=Match)
    signers: Signers | None = None
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="group name -> member logins or emails"
    )
    require: Require = Field(default_factory=Require)
    jurisdictions: list[PresetName] = Field(default_factory=list)
    exceptions: ExceptionRules | None = None


class RegionPolicySpec(SpecModel):
    regions: RegionGlobs = Field(min_length=1, description="cluster region globs")
    jurisdictions: list[PresetName] = Field(default_factory=list)
    evidence: EvidenceRules | None = None
    groups: dict[str, list[str]] = Field(default_factory=dict)
    require: Require = Field(default_factory=Require)


#: An exception glob starts with literal text (a registry, a repository, a name prefix): ``*``,
#: ``*/*`` or ``?*`` would except every image, which is switching the policy off, not an exception.
NAMED_GLOB = r"^[^*?\[]"
_NAMED_GLOB_MESSAGE = (
    "must start with literal text (a registry, repository or name prefix), not a wildcard: "
    "an exception for every image switches the policy off"
)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


class WorkloadRef(SpecModel):
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1, description="workload name glob")


class AccountabilityExceptionSpec(SpecModel):
    images: list[str] = Field(
        default_factory=list,
        description="image reference globs, each starting with literal text (never `*`)",
    )
    workloads: list[WorkloadRef] = Field(default_factory=list)  # kind and name-glob pairs
    reason: str = Field(min_length=1)
    incident_id: str = Field(min_length=1)
    owner: str = Field(min_length=1, max_length=256)
    approvers: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        min_length=1, max_length=16
    )
    expires_at: AwareDatetime

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "(has(self.images) && size(self.images) > 0) || "
                "(has(self.workloads) && size(self.workloads) > 0)",
                "an exception must name images or workloads",
            ),
            ("!(self.owner in self.approvers)", "the owner cannot approve their own exception"),
        )
    )

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        """Checked by the operator (status Invalid, with this message), not by the CRD schema."""
        if not isinstance(data, dict):
            return data
        for i, glob in enumerate(_list(data.get("images"))):
            if isinstance(glob, str) and re.match(NAMED_GLOB, glob) is None:
                raise ValueError(f"images[{i}] {glob!r} {_NAMED_GLOB_MESSAGE}")
        return data

    @model_validator(mode="after")
    def _check(self) -> AccountabilityExceptionSpec:
        if not self.images and not self.workloads:
            raise ValueError("an exception must name images or workloads")
        if self.owner in self.approvers:
            raise ValueError("the owner cannot approve their own exception")
        return self


KIND_POLICY = "AccountabilityPolicy"
KIND_REGION = "RegionPolicy"
KIND_EXCEPTION = "AccountabilityException"
