"""``affidavit explain IMAGE --json``: the effective policy, exceptions and replayed decision as
one JSON document, for a policy repository's scripts and dashboards rather than a terminal.

It carries what the text says, field for field: each requirement with the value in force and the
policy (and control) behind it, the trusted signers and where they come from, every exception in
the namespace with whether it would apply (and why not), and, with ``--evidence``, the decision.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from affidavit.policy.combine import EffectivePolicy
    from affidavit.policy.decision import Decision


def policy_document(eff: EffectivePolicy) -> dict[str, Any]:
    """The effective policy as ``explain`` prints it: policies, signers, groups, requirements."""
    from affidavit.attestations.evidence import KeySigner
    from affidavit.policy.explain import requirements, signer_warnings

    return {
        "policies": [
            {"kind": p.kind, "name": p.name, "generation": p.generation} for p in eff.policies
        ],
        "trustedSigners": [
            {"name": s.name, "key": True}
            if isinstance(s, KeySigner)
            else {
                "name": s.name,
                "key": False,
                "issuer": s.issuer,
                "identity": s.identity,
                **({"identityRegExp": s.identity_regexp} if s.identity_regexp else {}),
            }
            for s in eff.signers
        ],
        "signerSources": list(eff.signer_sources),
        "warnings": signer_warnings(eff),
        "groups": {name: sorted(members) for name, members in eff.groups},
        "requirements": [
            {
                "rule": rule,
                "value": value,
                "source": origin.source,
                "control": origin.control,
                "default": origin.default,
            }
            for rule, value, origin in requirements(eff)
        ],
    }


def decision_document(decision: Decision) -> dict[str, Any]:
    """A replayed decision, as the ledger would record it."""
    data: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(decision), default=str))
    data["allowed"] = decision.allowed
    return data


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True)
