"""Collect the evidence of AI involvement and review from git history and code-review data.

The pipeline's half of Affidavit: it runs in CI (``affidavit collect provenance`` / ``collect
review``) and in the demo, reads git and review records, and produces the predicates that
``affidavit attest`` signs. The cluster side (webhook, operator, policy, ledger, audit) never
imports it (an import-linter contract): it verifies what collection produced, through
``affidavit.attestations``, and needs none of git or the review formats.

Public face: ``collect_provenance`` builds the ai-provenance/v1 predicate for a commit range;
``load_registry`` loads the known AI tool identities (built-in, extended by a user file);
``load_tiers`` / ``default_tiers`` give the trust-tier map; ``collect_github_review``,
``collect_gitlab_review`` and ``collect_trailer_review`` build code-review/v1 from a GitHub pull
request, a GitLab merge request or commit trailers, with the agent identities
``load_agent_identities`` reads.
"""

from affidavit.collect.provenance import collect_provenance
from affidavit.collect.reviews import load_agent_identities
from affidavit.collect.reviews_github import collect_github_review
from affidavit.collect.reviews_gitlab import collect_gitlab_review
from affidavit.collect.reviews_trailers import collect_trailer_review
from affidavit.collect.tiers import TierMap, default_tiers, load_tiers
from affidavit.collect.tools import ToolRegistry, ToolSpec, load_registry

__all__ = [
    "TierMap",
    "ToolRegistry",
    "ToolSpec",
    "collect_github_review",
    "collect_gitlab_review",
    "collect_provenance",
    "collect_trailer_review",
    "default_tiers",
    "load_agent_identities",
    "load_registry",
    "load_tiers",
]
