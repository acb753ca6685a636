"""What a CI pipeline does after building an image: collect, sign, attach (the demo's release).

It is the composition ``affidavit collect provenance``, ``affidavit collect review`` and
``affidavit attest`` perform, called as functions so the demo and the end-to-end tests run the
same pipeline on images they build, without shelling out per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from affidavit.attestations.dsse import sign_envelope
from affidavit.attestations.image import push_sample_image
from affidavit.attestations.keys import Signer
from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.attestations.pseudonyms import PseudonymKey
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import attach
from affidavit.collect import collect_github_review, collect_provenance, load_registry
from affidavit.collect.pseudonymize import pseudonymous_provenance, pseudonymous_review
from affidavit.demo.github_records import Approval, write_review_records
from affidavit.demo.sample import SampleRepo


@dataclass(frozen=True)
class Release:
    image: str  # REGISTRY/REPO@sha256:...
    digest: str
    revision: str


def build_image(
    client: RegistryClient, registry_host: str, name: str, revision: str
) -> ImageReference:
    """Push a tiny image whose content names the revision it was built from."""
    repo = ImageReference.parse(f"{registry_host}/{name}")
    digest = push_sample_image(
        client, repo, {"app/REVISION": revision.encode() + b"\n"}, tag=revision[:12]
    )
    return ImageReference.parse(f"{registry_host}/{name}@{digest}")


def attest_predicate(
    client: RegistryClient,
    image: ImageReference,
    predicate_type: str,
    predicate: dict[str, object],
    signer: Signer,
) -> None:
    assert image.digest is not None
    statement = make_statement(image.name, image.digest, predicate_type, predicate)
    attach(client, image, predicate_type, envelope=sign_envelope(statement, signer).to_json())


def release(
    client: RegistryClient,
    registry_host: str,
    name: str,
    sample: SampleRepo,
    head: str,
    approvals: list[Approval],
    signer: Signer,
    workdir: Path,
    *,
    with_review: bool = True,
    pseudonym_key: PseudonymKey | None = None,
) -> Release:
    """Build an image from ``head`` and attest its AI provenance and (optionally) its review;
    with ``pseudonym_key``, naming people by pseudonyms (``collect --pseudonym-key``)."""
    image = build_image(client, registry_host, name, head)
    provenance = collect_provenance(sample.path, sample.base, head)
    if pseudonym_key is not None:
        provenance = pseudonymous_provenance(provenance, pseudonym_key, load_registry())
    attest_predicate(client, image, AI_PROVENANCE_V1, provenance.to_wire(), signer)
    if with_review:
        records = write_review_records(
            workdir / f"github-{head[:12]}", sample.path, sample.base, head, approvals
        )
        review = collect_github_review(records.pr, records.reviews, records.commits, head=head)
        if pseudonym_key is not None:
            review = pseudonymous_review(review, pseudonym_key)
        attest_predicate(client, image, CODE_REVIEW_V1, review.to_wire(), signer)
    assert image.digest is not None
    return Release(image=str(image), digest=image.digest, revision=head)
