"""The end-to-end demo: a sample repository, real local services, and the whole Affidavit path."""
