"""Collect the evidence of AI involvement and review from git history and code-review data.

The public face of collection: ``collect_provenance`` builds the ai-provenance/v1 predicate for a
commit range; ``load_registry`` loads the known AI tool identities (built-in, extended by a user
file); ``load_tiers`` / ``default_tiers`` give the trust-tier map.
"""

from affidavit.attestations.collect.provenance import collect_provenance
from affidavit.attestations.collect.tiers import TierMap, default_tiers, load_tiers
from affidavit.attestations.collect.tools import ToolRegistry, ToolSpec, load_registry

__all__ = [
    "TierMap",
    "ToolRegistry",
    "ToolSpec",
    "collect_provenance",
    "default_tiers",
    "load_registry",
    "load_tiers",
]
