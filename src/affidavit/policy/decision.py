"""The Decision: what the admission webhook decided about one request, and everything behind it.

The admission response carries a short, actionable message; the ledger keeps this full record,
so an auditor can later answer who deployed what, under which policies, on which evidence.
Since snapshot version 1 the record also carries a :class:`Snapshot` of what was true at decision
time (each image's AI involvement from its verified provenance, the exceptions used with their
owner, incident, approvers and expiry, the policy index digest, whether the caller was
authenticated), inside the hashed JSON so it is as tamper-evident as the outcome: the audit
needs neither the registry nor the exception objects, which may be long gone. Version 2 adds
who asked for each exception, as the API server authenticated them, and which of the object's
images the decision did not judge, and why. This module is the one place that reads the ledger's decision JSON back (:meth:`Decision.from_dict`); rows written
before snapshots existed read with ``snapshot=None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from affidavit.printable import printable

Outcome = Literal["allowed", "denied", "warned", "audited", "excepted"]
Mode = Literal["Enforce", "Warn", "Audit"]


@dataclass(frozen=True)
class Violation:
    """One unmet requirement. ``message`` is the full sentence shown to a release manager."""

    rule: str  # e.g. "review.critical.independentApprovals"
    policy: str  # e.g. "AccountabilityPolicy/baseline" or "preset/pci-dss"
    found: str
    expected: str
    fix: str
    image: str | None = None
    control: str | None = None  # e.g. "PCI DSS 6.2.3.1"

    @property
    def message(self) -> str:
        """One line; what the evidence brought in (paths, names, revisions) shown printable."""
        subject = f"{self.image}: " if self.image else ""
        cite = f" [{self.control}]" if self.control else ""
        return printable(
            f"{subject}{self.rule} ({self.policy}{cite}): found {self.found}; "
            f"expected {self.expected}; fix: {self.fix}"
        )


@dataclass(frozen=True)
class ImageRef:
    ref: str
    digest: str | None


@dataclass(frozen=True)
class EvidenceUsed:
    """An attestation a decision counted. A keyless one whose certificate names a source also
    records it (``certified_*``: the repository and commit the CI platform said the signing
    workflow ran for), so an auditor reads which repository's pipeline vouched for a deployment
    from the ledger alone, even where the policy trusts a whole organisation by a pattern.
    Where a policy required an evidence residency, ``location`` records where the RegionPolicies
    then placed the image's registry (the attestation is stored beside the image), so the ledger
    shows where each admitted image's evidence was kept, not only that no rule fired."""

    image: str
    predicate_type: str
    envelope_digest: str
    signer: str
    certified_repository: str | None = None
    certified_revision: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class PolicyRef:
    kind: str
    name: str
    generation: int | None = None


@dataclass(frozen=True)
class ToolUse:
    """An AI tool (and model) named by ``changes`` of an image's AI-assisted or generated commits."""

    name: str
    model: str | None
    changes: int


@dataclass(frozen=True)
class ReviewSeen:
    """The verified code-review evidence of an image at decision time."""

    change_request: str  # its URL, or "github #12"
    approvals: int  # on the final revision
    independent_approvals: int  # reviewer is not the author, the committer, a bot or an agent


@dataclass(frozen=True)
class AiInvolvement:
    """One image's AI involvement, from the verified ai-provenance/v1 used for the decision.

    ``provenance`` is the envelope digest of that attestation; None when the image had none
    verified (no policy covered it, it was not attested, or the lookup failed): the counts are
    then zero and :attr:`ai_touched` is None, undetermined, never "human".
    """

    image: str  # canonical reference, as in ``Decision.images``
    digest: str | None
    provenance: str | None = None
    commits: int = 0
    assisted: int = 0  # commits declared AI-assisted
    generated: int = 0  # commits declared AI-generated
    undeclared: int = 0  # commits with no declaration at all (unknown)
    tools: tuple[ToolUse, ...] = ()
    tiers: tuple[str, ...] = ()  # trust tiers the AI-touched commits changed
    ai_line_share: float | None = None
    review: ReviewSeen | None = None

    @property
    def ai_touched(self) -> bool | None:
        """True/False from verified provenance; None when there was none."""
        return None if self.provenance is None else self.assisted + self.generated > 0

    @property
    def reviewed(self) -> bool:
        """Whether verified review evidence shows an independent approval of the final revision."""
        return self.review is not None and self.review.independent_approvals > 0


@dataclass(frozen=True)
class ExceptionUsed:
    """An AccountabilityException that admitted the workload, as it read at decision time."""

    namespace: str
    name: str
    owner: str
    incident_id: str
    approvers: tuple[str, ...]
    expires_at: str  # RFC 3339, UTC
    reason: str
    #: Who wrote the exception's spec, as the API server authenticated them (the webhook's stamp,
    #: ``affidavit.admission.stamp``); None when not stamped, or recorded before version 2.
    requested_by: str | None = None

    @property
    def key(self) -> str:
        """``namespace/name``, as ``Decision.exception`` lists it."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class NotJudged:
    """An image the object runs that this decision did not judge, and why: it runs on its
    owner's admission (``because`` names the owner) or ran in the Pod before this update."""

    image: str
    because: str


@dataclass(frozen=True)
class Caller:
    """Who asked: ``authenticated`` when the webhook required and verified the kube-apiserver's
    client certificate (``webhook.clientAuth``); ``identity`` is that certificate's subject."""

    authenticated: bool = False
    identity: str | None = None


#: The snapshot layout this version writes and the newest it reads (2: an exception's
#: ``requested_by``, the images not judged).
SNAPSHOT_VERSION = 2


@dataclass(frozen=True)
class Snapshot:
    """What was true when the decision was taken (see the module docstring)."""

    policy_index: str  # "sha256:<hex>" of the policy index judged against
    caller: Caller = field(default_factory=Caller)
    images: tuple[AiInvolvement, ...] = ()
    exceptions: tuple[ExceptionUsed, ...] = ()
    #: Images of the object this decision did not judge (a Pod's owner's, or ran before its
    #: update); empty when it judged every one, and on version-1 snapshots.
    not_judged: tuple[NotJudged, ...] = ()
    version: int = SNAPSHOT_VERSION

    def image(self, ref: str) -> AiInvolvement | None:
        return next((i for i in self.images if i.image == ref), None)

    def exception(self, key: str) -> ExceptionUsed | None:
        return next((e for e in self.exceptions if e.key == key), None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """Raises ``ValueError`` for a snapshot newer than this version reads."""
        version = data.get("version")
        if not isinstance(version, int) or not 1 <= version <= SNAPSHOT_VERSION:
            raise ValueError(
                f"decision snapshot version {version!r} is not one this Affidavit reads "
                f"(1..{SNAPSHOT_VERSION}); upgrade Affidavit to read it"
            )
        return cls(
            policy_index=data["policy_index"],
            caller=Caller(**data["caller"]),
            images=tuple(
                AiInvolvement(
                    **{
                        **i,
                        "tools": tuple(ToolUse(**t) for t in i.get("tools") or ()),
                        "tiers": tuple(i.get("tiers") or ()),
                        "review": ReviewSeen(**i["review"]) if i.get("review") else None,
                    }
                )
                for i in data.get("images") or ()
            ),
            exceptions=tuple(
                ExceptionUsed(**{**e, "approvers": tuple(e.get("approvers") or ())})
                for e in data.get("exceptions") or ()
            ),
            not_judged=tuple(NotJudged(**n) for n in data.get("not_judged") or ()),
            version=version,
        )


@dataclass(frozen=True)
class Decision:
    id: str
    time: str  # RFC 3339, UTC
    cluster: str
    region: str
    namespace: str
    kind: str
    name: str
    operation: str
    user: str
    outcome: Outcome
    mode: Mode
    images: tuple[ImageRef, ...] = field(default_factory=tuple)
    violations: tuple[Violation, ...] = field(default_factory=tuple)
    evidence: tuple[EvidenceUsed, ...] = field(default_factory=tuple)
    policies: tuple[PolicyRef, ...] = field(default_factory=tuple)
    exception: str | None = None
    #: None on rows recorded before snapshots (and on decisions judged outside the webhook).
    snapshot: Snapshot | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome != "denied"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Rebuild a Decision from its JSON form (as the ledger stores it).

        Raises ``TypeError``/``KeyError``/``ValueError`` on data that is not a decision (or a
        snapshot newer than this version reads); callers that read untrusted rows wrap those
        where they enter. A row without ``snapshot`` (recorded before it existed) reads as None.
        """
        snapshot = data.get("snapshot")
        return cls(
            **{
                **data,
                "images": tuple(ImageRef(**i) for i in data.get("images") or ()),
                "violations": tuple(Violation(**v) for v in data.get("violations") or ()),
                "evidence": tuple(EvidenceUsed(**e) for e in data.get("evidence") or ()),
                "policies": tuple(PolicyRef(**p) for p in data.get("policies") or ()),
                "snapshot": None if snapshot is None else Snapshot.from_dict(snapshot),
            }
        )
