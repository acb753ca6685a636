"""Whose signatures a policy trusts: keys and Sigstore keyless identities, as CRD models.

Kept apart from the policy's other fields because signers are their own concern: which public
keys, which OIDC issuer and subject, which private trusted root. The engine turns them into
trusted signers (``combine.py``); the CRD schema is generated from these classes.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, model_validator

from affidavit.policy.spec_base import SpecModel


class KeySignerSpec(SpecModel):
    """A signer known by its public key (``affidavit keygen`` or cosign key pairs)."""

    name: str = Field(min_length=1)
    """The signer's name, unique among the policy's keys, shown in decisions."""
    public_key: str = Field(pattern=r"^\s*-----BEGIN PUBLIC KEY-----")
    """PEM public key (ECDSA P-256 or Ed25519)."""


class ConfigMapKeyRef(SpecModel):
    """A key of a ConfigMap in the namespace Affidavit runs in (the chart's release namespace)."""

    name: str = Field(min_length=1, max_length=253)
    """The ConfigMap's name."""
    key: str = Field(default="trusted_root.json", min_length=1)
    """The key holding the document."""


class TrustedRootRef(SpecModel):
    """Where a private Sigstore's trusted_root.json is read from (air-gapped verification)."""

    config_map_ref: ConfigMapKeyRef
    """The ConfigMap (in Affidavit's namespace) and key holding the trusted_root.json."""


class KeylessSignerSpec(SpecModel):
    """A Sigstore keyless signer: an OIDC identity certified by Fulcio.

    The certificate must name ``issuer`` and either the exact ``subject`` or a subject matching
    ``subjectRegExp`` whole (as policy-controller's keyless.identities); ``identity`` is the
    older name of ``subject``."""

    name: str = Field(min_length=1)
    """The signer's name, unique among the policy's keyless signers, shown in decisions."""
    issuer: str = Field(pattern=r"^https://")
    """The OIDC issuer URL the certificate must name."""
    subject: str | None = Field(default=None, min_length=1)
    """The certificate's subject alternative name (an email or a URI), exactly."""
    subject_reg_exp: str | None = Field(default=None, min_length=1)
    """A regular expression the certificate's subject alternative name must match whole."""
    identity: str | None = Field(default=None, min_length=1)
    """The same as subject (the field's earlier name)."""
    trusted_root: TrustedRootRef | None = None
    """A private Sigstore's trusted root to verify against (omitted: the public instance's)."""
    source_repository_refs: list[str] | None = Field(default=None, min_length=1, max_length=32)
    """The refs the CI run must have been for, exactly, as the certificate's Source Repository
    Ref names them (refs/heads/main, refs/tags/v1.2.0): a reusable workflow's subject is the
    same for a pull request's run as for a push to main; omitted = any ref."""
    build_triggers: list[str] | None = Field(default=None, min_length=1, max_length=32)
    """The events that may have started the CI run, as the certificate's Build Trigger names
    them (GitHub: push, workflow_dispatch; a pull request's run is pull_request or
    pull_request_target); omitted = any event."""

    @model_validator(mode="after")
    def _one_subject(self) -> KeylessSignerSpec:
        given = [v for v in (self.subject, self.subject_reg_exp, self.identity) if v]
        if len(given) != 1:
            raise ValueError(
                f"keyless signer {self.name}: give exactly one of subject and subjectRegExp"
            )
        if self.subject_reg_exp:
            try:
                re.compile(self.subject_reg_exp)
            except re.error as e:
                raise ValueError(
                    f"keyless signer {self.name}: subjectRegExp is not a regular expression: {e}"
                ) from e
        return self


def _list_map(key: str) -> dict[str, Any]:
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]}


class Signers(SpecModel):
    """Whose signatures count; an attestation signed by anyone else is ignored."""

    keys: list[KeySignerSpec] = Field(default_factory=list, json_schema_extra=_list_map("name"))
    """Signers by public key."""
    keyless: list[KeylessSignerSpec] = Field(
        default_factory=list, json_schema_extra=_list_map("name")
    )
    """Signers by OIDC identity (Sigstore keyless)."""

    @model_validator(mode="after")
    def _unique(self) -> Signers:
        for what, names in (
            ("keys", [k.name for k in self.keys]),
            ("keyless", [k.name for k in self.keyless]),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"signers.{what}: duplicate name {', '.join(dup)}")
        return self
