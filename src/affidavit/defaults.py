"""Defaults the webhook's settings, its CLI flags, the demo and the chart share, defined once.

A default written in four places drifts: the CLI would promise one budget while the settings
object applies another. This module imports nothing heavy, so the CLI can use it for its flags
without loading the web server (``affidavit --help`` stays fast); the chart's values are checked
against it by a test.
"""

from __future__ import annotations

from typing import Final

#: The webhook answers within this, well inside the apiserver's 10 s webhook timeout.
BUDGET_SECONDS: Final = 8.0
#: How long a review waits for the API server to show a child's owner (and at most half the
#: budget left); past it the child is judged on its own.
OWNER_CHECK_SECONDS: Final = 2.0
#: The largest AdmissionReview body read; the apiserver's own request limit is 3 MiB.
MAX_BODY_BYTES: Final = 3 * 1024 * 1024
#: Distinct images judged per request; a request naming more is denied.
MAX_IMAGES_PER_REQUEST: Final = 64
#: The ledger when none is given: SQLite in the working directory.
LEDGER_URL: Final = "sqlite:///affidavit-ledger.db"
#: The predicates the evidence cache keeps, in bytes (about 5x that in memory; the chart's
#: ``webhook.evidenceCacheMiB`` sets it against the container's memory limit).
EVIDENCE_CACHE_BYTES: Final = 48 * 1024 * 1024
