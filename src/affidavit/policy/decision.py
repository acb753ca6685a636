"""The Decision: what the admission webhook decided about one request, and everything behind it.

The admission response carries a short, actionable message; the ledger keeps this full record,
so an auditor can later answer who deployed what, under which policies, on which evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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
        subject = f"{self.image}: " if self.image else ""
        cite = f" [{self.control}]" if self.control else ""
        return (
            f"{subject}{self.rule} ({self.policy}{cite}): found {self.found}; "
            f"expected {self.expected}; fix: {self.fix}"
        )


@dataclass(frozen=True)
class ImageRef:
    ref: str
    digest: str | None


@dataclass(frozen=True)
class EvidenceUsed:
    image: str
    predicate_type: str
    envelope_digest: str
    signer: str


@dataclass(frozen=True)
class PolicyRef:
    kind: str
    name: str
    generation: int | None = None


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

    @property
    def allowed(self) -> bool:
        return self.outcome != "denied"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Rebuild a Decision from its JSON form (as the ledger stores it).

        Raises ``TypeError``/``KeyError``/``ValueError`` on data that is not a decision; callers
        that read untrusted rows wrap those where they enter.
        """
        return cls(
            **{
                **data,
                "images": tuple(ImageRef(**i) for i in data.get("images") or ()),
                "violations": tuple(Violation(**v) for v in data.get("violations") or ()),
                "evidence": tuple(EvidenceUsed(**e) for e in data.get("evidence") or ()),
                "policies": tuple(PolicyRef(**p) for p in data.get("policies") or ()),
            }
        )
