"""The cluster-side operator: policy CRDs -> the published policy index, status, webhook
certificates, exception expiry, Events/PolicyReports for denials and warnings, and the
re-check of running workloads (``recheck``: PolicyReports per namespace, nothing evicted).

Public face: ``OperatorSettings`` and ``run`` / ``run_async`` (``affidavit operator run``), plus
``DIGEST_ANNOTATION`` and the certificate Secret ``SECRET_NAME`` (the index ConfigMap's name
and key live in ``affidavit.names``).
"""

from affidavit.operator.certificates import SECRET_NAME, CertificateManager, CertificatePolicy
from affidavit.operator.handlers import (
    DIGEST_ANNOTATION,
    Reconciler,
)
from affidavit.operator.main import OperatorSettings, run, run_async

__all__ = [
    "DIGEST_ANNOTATION",
    "SECRET_NAME",
    "CertificateManager",
    "CertificatePolicy",
    "OperatorSettings",
    "Reconciler",
    "run",
    "run_async",
]
