"""Policy: the CRD models, jurisdiction presets, strictest-wins combination and evaluation.

Pure functions, no I/O: the operator feeds it Kubernetes objects, the webhook feeds it verified
evidence, and both get the same answers.
"""

from affidavit.policy.combine import EffectivePolicy, Origin, Req, TierRules
from affidavit.policy.decision import Decision, EvidenceUsed, ImageRef, PolicyRef, Violation
from affidavit.policy.evaluate import RequestContext, evaluate
from affidavit.policy.index import PolicyIndex
from affidavit.policy.messages import admission_message
from affidavit.policy.stored import ExceptionRef

__all__ = [
    "Decision",
    "EffectivePolicy",
    "EvidenceUsed",
    "ExceptionRef",
    "ImageRef",
    "Origin",
    "PolicyIndex",
    "PolicyRef",
    "Req",
    "RequestContext",
    "TierRules",
    "Violation",
    "admission_message",
    "evaluate",
]
