"""The cluster-side operator: policy CRDs -> the published policy index, status, webhook
certificates, exception expiry, and Events/PolicyReports for denials and warnings.

Public face: ``OperatorSettings`` and ``run`` / ``run_async`` (``affidavit operator run``), plus
the names the webhook and the chart agree on: ``INDEX_CONFIGMAP``/``INDEX_KEY``/
``DIGEST_ANNOTATION`` and the certificate Secret ``SECRET_NAME``.
"""

from affidavit.operator.certificates import SECRET_NAME, CertificateManager, CertificatePolicy
from affidavit.operator.handlers import (
    DIGEST_ANNOTATION,
    INDEX_CONFIGMAP,
    INDEX_KEY,
    Reconciler,
)
from affidavit.operator.main import OperatorSettings, run, run_async

__all__ = [
    "DIGEST_ANNOTATION",
    "INDEX_CONFIGMAP",
    "INDEX_KEY",
    "SECRET_NAME",
    "CertificateManager",
    "CertificatePolicy",
    "OperatorSettings",
    "Reconciler",
    "run",
    "run_async",
]
