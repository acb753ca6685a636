"""Helpers for the copy tests: keys, attestations made with Affidavit's own signing and store,
the CLI run in-process, and raw reads of what a registry holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from affidavit.attestations.dsse import sign_envelope
from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import AttachResult, attach
from affidavit.cli.main import main
from affidavit.envtest.process import free_port

PROVENANCE = "https://affidavit.dev/attestations/ai-provenance/v1"
REVIEW = "https://affidavit.dev/attestations/code-review/v1"


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path

    @property
    def trusted(self) -> KeySigner:
        return KeySigner(name=self.public.name, public_key_pem=self.public.read_text())


def make_keys(directory: Path, name: str) -> Keys:
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    (directory / f"{name}.key").write_bytes(private_pem)
    (directory / f"{name}.pub").write_bytes(public_pem)
    return Keys(directory / f"{name}.key", directory / f"{name}.pub")


def attest(
    client: RegistryClient, image: ImageReference, keys: Keys, predicate_type: str = PROVENANCE
) -> AttachResult:
    """Sign a statement about ``image`` and store it beside it, in both layouts."""
    assert image.digest is not None
    statement = make_statement(image.name, image.digest, predicate_type, {"commits": 3})
    envelope = sign_envelope(statement, load_signer(keys.private)).to_json()
    return attach(client, image, predicate_type, envelope=envelope)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``affidavit ARGV`` in-process: exit code, stdout, stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fallback_index(client: RegistryClient, image: ImageReference) -> list[str]:
    """The referrer digests the ``sha256-<hex>`` tag index lists, in order ([] without one)."""
    assert image.digest is not None
    index = client.find_manifest(image.with_tag(image.digest.replace(":", "-")))
    return [] if index is None else [e["digest"] for e in index.json()["manifests"]]


def tag_bytes(client: RegistryClient, image: ImageReference, suffix: str) -> bytes | None:
    """The bytes of the manifest at ``sha256-<hex><suffix>`` (None when there is none)."""
    assert image.digest is not None
    found = client.find_manifest(image.with_tag(image.digest.replace(":", "-") + suffix))
    return None if found is None else found.data


def delete_manifest(image: ImageReference, digest: str) -> None:
    """Delete a manifest (and so its tags) from a registry started with deletes enabled."""
    url = f"http://{image.registry}/v2/{image.repository}/manifests/{digest}"
    assert httpx.delete(url).status_code == 202


def closed_port() -> int:
    """A loopback port nothing listens on (:func:`free_port` hands it to nobody else)."""
    return free_port()


def json_of(out: str) -> dict[str, Any]:
    document = json.loads(out)
    assert isinstance(document, dict)
    return document
