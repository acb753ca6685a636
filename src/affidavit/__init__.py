"""Affidavit: accountability for AI-assisted code, from the pipeline to the cluster to the audit."""

import sys

__version__ = "0.1.0"

# httpx's package imports its own command-line client (click, rich and pygments, a third of a
# one-attestation `affidavit verify`) whenever those are installed, and Affidavit never runs it.
# A None entry makes that one import fail, and httpx then defines a stub ``httpx.main`` instead.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
