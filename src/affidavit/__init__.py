"""Affidavit: accountability for AI-assisted code, from the pipeline to the cluster to the audit."""

__version__ = "0.1.0"
