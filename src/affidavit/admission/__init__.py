"""The admission webhook: AdmissionReview v1 in, an accountable Decision out, recorded in the ledger.

Public face: ``WebhookSettings``/``build_webhook``/``build_app``/``serve`` (wiring and server),
``Webhook``/``Judge`` (the pipeline without HTTP), ``create_app`` (the FastAPI app),
``parse_review``/``review_response`` and ``extract_images`` (the Kubernetes payloads), and the
policy sources.
"""

from affidavit.admission.app import create_app
from affidavit.admission.decide import Answer, Judge, Webhook
from affidavit.admission.policy_source import (
    ConfigMapPolicySource,
    FilePolicySource,
    NamespaceLabels,
    PolicySource,
    load_policy_files,
)
from affidavit.admission.resolve import EvidenceResolver, SecretReader, secret_credentials
from affidavit.admission.review import MalformedReview, parse_review, review_response
from affidavit.admission.server import WebhookSettings, build_app, build_webhook, serve
from affidavit.admission.workloads import WorkloadImages, extract_images

__all__ = [
    "Answer",
    "ConfigMapPolicySource",
    "EvidenceResolver",
    "FilePolicySource",
    "Judge",
    "MalformedReview",
    "NamespaceLabels",
    "PolicySource",
    "SecretReader",
    "Webhook",
    "WebhookSettings",
    "WorkloadImages",
    "build_app",
    "build_webhook",
    "create_app",
    "extract_images",
    "load_policy_files",
    "parse_review",
    "review_response",
    "secret_credentials",
    "serve",
]
