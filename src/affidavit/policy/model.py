"""The three policy CRDs as strict models: the one definition both the CRDs and the engine use.

Whose signatures count lives in ``signer_model.py`` and the strict base in ``spec_base.py``.
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
    ConfigDict,
    Field,
    model_validator,
)

from affidavit.names import API_VERSION, GROUP, VERSION
from affidavit.policy.signer_model import Signers
from affidavit.policy.spec_base import SpecModel, cel

__all__ = ["API_VERSION", "GROUP", "VERSION"]  # re-exported: the models' wire identity


Mode = Literal["Enforce", "Warn", "Audit"]
FailurePolicy = Literal["Fail", "Ignore"]
PresetName = Literal[
    "soc2", "pci-dss", "us-fedramp-moderate", "eu", "eu-ai-act-high-risk", "slsa-source-l4"
]
AppliesTo = Literal["ai", "all"]
LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


class LabelSelectorRequirement(SpecModel):
    """One namespace label requirement, as in a Kubernetes label selector."""

    key: str = Field(min_length=1)
    """The label key the requirement applies to."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the label's value relates to `values`."""
    values: list[str] = Field(default_factory=list)
    """Label values; required (non-empty) for In and NotIn, ignored otherwise."""

    model_config = ConfigDict(
        json_schema_extra=cel(
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
    """Which namespaces, by their labels; every condition must hold (omitted = all namespaces)."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    """Labels the namespace must carry with exactly these values."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=32)
    """Label requirements the namespace must meet, all of them."""


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

    images: list[str] = Field(default_factory=list)
    """Image reference globs, matched against the canonical name (docker.io/library/nginx:1)."""
    namespace_selector: NamespaceSelector | None = None
    """The namespaces whose workloads the policy governs (omitted = every namespace)."""
    regions: RegionGlobs = Field(default_factory=list)
    """Globs of the cluster's region (topology.kubernetes.io/region), e.g. eu-*."""
    clusters: list[str] = Field(default_factory=list)
    """Globs of the cluster's name as the webhook is configured with it."""


class ProvenanceRequirement(SpecModel):
    """Whether a signed ai-provenance/v1 attestation must be present, and how fresh."""

    required: bool = True
    """An image without signed provenance is denied."""
    max_age_days: int | None = Field(default=None, ge=1)
    """The revision must have been committed at most this many days ago (omitted = any age). A
    commit time after the attestation was made, or in the future, shows no age and is denied."""


class TierRequirement(SpecModel):
    """Review needed by the changes that touch a tier (`*` = every tier)."""

    approvals: int = Field(default=0, ge=0)
    """Approvals needed on the change's final revision."""
    independent_approvals: int = Field(default=0, ge=0)
    """Approvals needed by neither the author, a committer, nor a bot."""
    human_approvals: int = Field(default=0, ge=0)
    """Approvals needed by reviewers who are not bots."""
    reviewer_groups: list[str] = Field(default_factory=list)
    """An approving reviewer must belong to one of these groups (see `groups`)."""
    security_review: bool = False
    """An approval by a member of the group `security` is needed."""
    applies_to: AppliesTo = "ai"
    """ai: only AI-involved changes need this review; all: every change does."""

    model_config = ConfigDict(
        json_schema_extra=cel(
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

    provenance: ProvenanceRequirement | None = None
    """Signed ai-provenance/v1; omitted in an AccountabilityPolicy = required."""
    tiers: dict[str, TierRequirement] = Field(default_factory=dict, max_length=32)
    """Trust tier name (from the repository's tier map; `*` = every tier) -> review needed."""
    allowed_tools: list[str] | None = None
    """AI tool name globs that may have written code; omitted = any tool."""
    source_repositories: list[str] | None = Field(default=None, min_length=1, max_length=32)
    """The repositories the image must be built from: globs of the address the provenance and
    the review name as their source (https://github.com/acme/payments, github.com/acme/*; a
    scheme, a login, a port and .git do not matter). An attestation of a build from another
    repository, however honestly signed (a shared CI key, a reusable signing workflow any
    repository may call), is not evidence for these images; omitted = any repository."""
    require_tool_details: bool = False
    """AI-involved changes must name the tool, its model and its version."""
    treat_unknown_as_ai: bool = False
    """Commits with no AI declaration count as AI-involved."""
    owner_label: str | None = Field(default=None, pattern=LABEL_KEY)
    """A label the workload must carry naming its accountable owner."""
    escalation_label: str | None = Field(default=None, pattern=LABEL_KEY)
    """A label the workload must carry naming where incidents escalate."""
    independent_release_approver: bool = False
    """AI-involved changes must be merged by neither their author nor a reviewer."""
    consistent_revision: bool | None = None
    """Provenance, review and build name one source revision, provenance and review one
    repository; omitted in an AccountabilityPolicy = true."""
    certified_source: bool | None = None
    """A statement signed keyless names, as its ``source``, the repository and commit its
    certificate certifies (the CI platform's claims, Fulcio's Source Repository URI and Digest),
    where the certificate names any; omitted in an AccountabilityPolicy = true."""
    platform_review: bool | None = None
    """Approvals count only as a code-review platform (GitHub, GitLab, Gerrit) recorded them,
    not from Reviewed-by/Acked-by/Approved-by trailers, which whoever commits writes; omitted in
    an AccountabilityPolicy = true."""
    review_covers_commits: bool | None = None
    """Every commit whose tier needs review is one the reviewed change request holds (its own
    commits, the merge or squash commit it landed as), so an earlier commit that reached the
    branch unreviewed cannot pass under a later change's approval; omitted in an
    AccountabilityPolicy = true."""
    tier_map_digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    """The provenance must have classified files with this trust-tier map (its
    collector.tiersDigest)."""
    require_digest: bool = False
    """Images must be referenced by digest (the pinning webhook otherwise pins covered tags)."""
    failure_policy: FailurePolicy | None = None
    """What an unreachable registry means: Fail denies, Ignore admits; omitted in an
    AccountabilityPolicy = Fail, and Fail beats Ignore."""
    retention_days: int | None = Field(default=None, ge=1)
    """The ledger must keep decisions at least this many days."""


def with_policy_defaults(require: Require) -> Require:
    """An AccountabilityPolicy's ``require`` with the secure defaults of what it omits.

    A matched policy that says nothing about provenance still requires it (an image with no
    attestations at all must not pass), the review must be for the revision the provenance
    describes, recorded by a review platform (not commit trailers) and of a change request that
    holds the commits needing review, a keyless statement
    names the source its certificate certifies, and an unreachable
    registry denies: each only when the policy does not say otherwise. In the strictest-wins
    merge the default counts like a written value, so one policy's ``Ignore`` or
    ``required: false`` cannot weaken another policy that is silent.
    """
    fill: dict[str, Any] = {}
    if require.provenance is None:
        fill["provenance"] = ProvenanceRequirement()
    if require.consistent_revision is None:
        fill["consistent_revision"] = True
    if require.certified_source is None:
        fill["certified_source"] = True
    if require.platform_review is None:
        fill["platform_review"] = True
    if require.review_covers_commits is None:
        fill["review_covers_commits"] = True
    if require.failure_policy is None:
        fill["failure_policy"] = "Fail"
    return require.model_copy(update=fill) if fill else require


class ExceptionRules(SpecModel):
    """Bounds on the AccountabilityExceptions that may relax this policy."""

    max_days: int | None = Field(default=None, ge=1)
    """The longest an AccountabilityException may last, from creation to expiry."""
    separate_requester: bool = False
    """Separation of duties: an exception admits nothing its own requester deploys. The
    requester is the API server's name for whoever wrote the exception's spec (stamped by the
    webhook, annotation affidavit.dev/requested-by); an exception without that stamp admits
    nothing under this rule. The deployer's name is the one its admission request gives: only
    webhook.clientAuth makes every request the webhook judges the API server's; without it,
    anyone who reaches the webhook's port could send one under another name."""
    repository_only: bool = False
    """An exception's image globs may each cover one repository at most: registry and
    repository written out, a wildcard only in the tag or digest (``registry.example/team/app``,
    ``registry.example/team/app:*``). ``registry.example/*`` or ``registry.example/team/*``
    would switch the policy off for everything they cover; such an exception is Invalid and
    admits nothing here."""


#: A registry host[:port] or a glob of hosts: letters, digits, dots, dashes, an IPv6 literal in
#: brackets, a port, and the glob characters ``*`` and ``?`` (no path: a location is a registry's).
REGISTRY_GLOB = r"^[A-Za-z0-9*?.\-]+(:[0-9*?]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$"
#: A location name: ``eu``, ``us``, ``eu-central-1``.
LOCATION_NAME = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$"
PSEUDONYM_KEY_ID = r"^[0-9a-f]{16}$"


class RegistryLocation(SpecModel):
    """Where one registry, or every registry a host glob names, keeps what is pushed to it."""

    registry: str = Field(min_length=1, max_length=261, pattern=REGISTRY_GLOB)
    """A registry host[:port] as image references name it (registry.eu.example.com,
    10.0.0.5:5000), or a glob of hosts (*.eu.example.com); docker.io for Docker Hub."""
    location: str = Field(min_length=1, max_length=63, pattern=LOCATION_NAME)
    """Where that registry stores data, e.g. eu or eu-central-1 (compared in lower case). A
    residency of eu is met by a registry located in eu or in eu-<anything>."""

    @model_validator(mode="before")
    @classmethod
    def _names_a_domain(cls, data: Any) -> Any:
        """Checked by the operator (status Invalid, with this message), not by the CRD schema:
        ``*`` or ``*.com`` would place registries nobody named, which switches residency off
        as ``images: ["*"]`` would switch a policy off in an exception."""
        glob = data.get("registry") if isinstance(data, dict) else None
        host = glob.partition(":")[0] if isinstance(glob, str) else ""
        if re.search(r"[*?]", host) and not re.search(r"\.[A-Za-z0-9-]+\.[A-Za-z0-9-]+$", host):
            raise ValueError(
                f"registry {glob!r}: a glob must end with a domain of at least two literal "
                "labels (*.eu.example.com): a wider one places registries nobody named"
            )
        return data


class EvidenceRules(SpecModel):
    """How a region's evidence is kept. residency is checked at admission against the
    registries declared in registryLocations, and pseudonymousIdentities (with the keys of
    pseudonymKeyIds) against the people the provenance and review attestations name; retentionDays is shown by explain and not checked
    at admission."""

    retention_days: int | None = Field(default=None, ge=1)
    """The ledger must keep decisions at least this many days."""
    residency: str | None = None
    """Where evidence must be stored: a location name such as eu (compared in lower case). An
    image's attestations are stored beside it, so an image is admitted only from a registry
    that registryLocations places there (eu is met by eu and eu-*)."""
    registry_locations: list[RegistryLocation] = Field(default_factory=list, max_length=64)
    """Where the registries of these regions store data. Facts the regional operator declares
    for residency: a registry nobody declares is in no location."""
    pseudonym_key_ids: list[Annotated[str, Field(pattern=PSEUDONYM_KEY_ID)]] = Field(
        default_factory=list, max_length=16
    )
    """Where pseudonymousIdentities is in force, the pseudonym keys the evidence may name people
    under, by key id (the 16 hex digits of psn:KEYID:..., printed by affidavit pseudonym key):
    pseudonyms of any other key, such as a key only one team holds, which nobody accountable
    could re-identify, are refused. List the old and the new key while a key is rotated."""
    pseudonymous_identities: bool = False
    """The provenance and review attestations name every person (author, committer, accepter,
    reviewer) by a keyed pseudonym (psn:KEYID:..., affidavit collect --pseudonym-key), never by
    name, email or login: evidence copied out of the region then carries no personal data."""


class AccountabilityPolicySpec(SpecModel):
    """A cluster-wide policy: what the images it matches must prove before they run."""

    mode: Mode = "Enforce"
    """Enforce denies; Warn admits with a warning; Audit only records the decision."""
    match: Match = Field(default_factory=Match)
    """Which requests the policy governs (omitted = all)."""
    signers: Signers | None = None
    """Whose signatures count; with several matching policies only the signers they all name
    count, and with none named no attestation is trusted."""
    groups: dict[str, list[str]] = Field(default_factory=dict)
    """Group name -> member logins or emails, for reviewerGroups and securityReview."""
    require: Require = Field(default_factory=Require)
    """What the matched images must prove; omissions take secure defaults."""
    jurisdictions: list[PresetName] = Field(default_factory=list)
    """Presets whose requirements are added (strictest wins), e.g. soc2, pci-dss."""
    exceptions: ExceptionRules | None = None
    """Bounds on exceptions to this policy (omitted = the operator's default, 7 days)."""


class RegionPolicySpec(SpecModel):
    """Requirements for every cluster in some regions, added to the cluster's policies."""

    regions: RegionGlobs = Field(min_length=1)
    """Globs of the regions (topology.kubernetes.io/region) the policy applies in."""
    jurisdictions: list[PresetName] = Field(default_factory=list)
    """Presets whose requirements are added (strictest wins), e.g. eu, us-fedramp-moderate."""
    evidence: EvidenceRules | None = None
    """How evidence is kept in these regions."""
    groups: dict[str, list[str]] = Field(default_factory=dict)
    """Group name -> member logins or emails, for reviewerGroups and securityReview."""
    require: Require = Field(default_factory=Require)
    """What every image in these regions must prove, beside each policy's own requirements."""


#: An exception glob starts with literal text (a registry, a repository, a name prefix): ``*``,
#: ``*/*`` or ``?*`` would except every image, which is switching the policy off, not an exception.
NAMED_GLOB = r"^[^*?\[]"
_NAMED_GLOB_MESSAGE = (
    "must start with literal text (a registry, repository or name prefix), not a wildcard: "
    "an exception for every image switches the policy off"
)
_NAMED_WORKLOAD_MESSAGE = (
    "must start with literal text (a workload name or prefix), not a wildcard: an exception for "
    "every workload switches the policy off"
)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


class WorkloadRef(SpecModel):
    """A workload by kind and name glob, in the exception's namespace."""

    kind: str = Field(min_length=1, max_length=63)
    """The workload's kind, e.g. Deployment."""
    name: str = Field(min_length=1, max_length=253)
    """A glob of the workload's name, starting with literal text (never `*`)."""


class AccountabilityExceptionSpec(SpecModel):
    """A time-bound, approved waiver of the policies for some images or workloads."""

    images: list[Annotated[str, Field(max_length=512)]] = Field(default_factory=list, max_length=32)
    """Image reference globs, each starting with literal text (never `*`)."""
    workloads: list[WorkloadRef] = Field(default_factory=list, max_length=32)
    """Workloads (kind and name glob) in this namespace the exception covers."""
    reason: str = Field(min_length=1, max_length=2048)
    """Why the waiver is needed, recorded with every decision it allows."""
    incident_id: str = Field(min_length=1, max_length=256)
    """The incident or change ticket the waiver belongs to."""
    owner: str = Field(min_length=1, max_length=256)
    """Who is accountable for the waiver."""
    approvers: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        min_length=1, max_length=16
    )
    """Who approved the waiver; never the owner."""
    expires_at: AwareDatetime
    """When the waiver ends (RFC 3339, with a time zone), within the policy's maxDays."""

    model_config = ConfigDict(
        json_schema_extra=cel(
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
        # Like an image glob: a workload glob that names no workload excepts them all.
        for i, workload in enumerate(_list(data.get("workloads"))):
            glob = workload.get("name") if isinstance(workload, dict) else None
            if isinstance(glob, str) and re.match(NAMED_GLOB, glob) is None:
                raise ValueError(f"workloads[{i}].name {glob!r} {_NAMED_WORKLOAD_MESSAGE}")
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
