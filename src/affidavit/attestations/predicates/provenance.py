"""The ai-provenance/v1 predicate: which changes in an image were AI-assisted, how we know.

One record per commit in ``baseRevision..revision``. ``aiInvolvement`` is ``unknown`` for a commit
with no signal at all (never ``none``): coverage reports count those as undeclared, so a missing
declaration can never pass for a human-only change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from affidavit.attestations.predicates._base import WireModel

AI_PROVENANCE_V1 = "https://affidavit.dev/attestations/ai-provenance/v1"

AiInvolvement = Literal["none", "assisted", "generated", "unknown"]
TiersKind = Literal["base-revision", "file", "built-in"]
EvidenceKind = Literal["trailer", "identity", "git-ai-note", "agent-trace", "declaration"]


class Source(WireModel):
    repository: str
    revision: str
    base_revision: str | None = None
    ref: str | None = None


class Person(WireModel):
    name: str
    email: str


class Tool(WireModel):
    name: str
    model: str | None = None
    version: str | None = None


class Evidence(WireModel):
    """Where an answer came from: e.g. kind=trailer, detail='Co-authored-by: Claude <noreply@anthropic.com>'."""

    kind: EvidenceKind
    detail: str


class FileChange(WireModel):
    path: str
    tier: str
    lines_added: int = 0
    lines_deleted: int = 0
    ai_lines: int | None = None
    binary: bool = False
    previous_path: str | None = None


class Change(WireModel):
    commit: str
    parents: list[str] = Field(default_factory=list)
    author: Person
    committer: Person
    authored_at: str
    committed_at: str
    ai_involvement: AiInvolvement
    evidence: list[Evidence] = Field(default_factory=list)
    tools: list[Tool] = Field(default_factory=list)
    accepted_by: Person | None = None
    accepted_at: str | None = None
    files: list[FileChange] = Field(default_factory=list)


class TiersSource(WireModel):
    """Where the trust-tier map came from: the base revision's ``.affidavit/tiers.yaml`` (the
    trusted side), a ``--tiers`` file, or the built-in default map."""

    kind: TiersKind
    path: str | None = None
    revision: str | None = None  # the base revision the map was read at (kind base-revision)


class Collector(WireModel):
    name: str
    version: str
    tiers_digest: str | None = None  # "sha256:<hex>" of the trust-tier configuration used
    tiers_source: TiersSource | None = None


class Summary(WireModel):
    commits: int
    ai_touched_commits: int
    undeclared_commits: int
    traceability_coverage: float  # share of commits with a declared answer (not unknown), 0..1
    tools: list[str] = Field(default_factory=list)
    tiers_touched_by_ai: list[str] = Field(default_factory=list)
    ai_line_share: float | None = None


class AiProvenance(WireModel):
    source: Source
    changes: list[Change]
    summary: Summary
    collector: Collector
    created_at: str | None = None  # RFC 3339; orders several attestations (signed_time.py)
