"""Attestations on a registry that has the OCI 1.1 referrers API (go-containerregistry's, the
real server, built from the module proxy), where every other test's registry (Debian's
distribution 2.8) has none.

What must hold: the API lists the bundle ``attest`` pushed; verification reads a bundle the API
alone lists (a registry whose fallback tag is gone, as after a cleanup, or never written, as
cosign writes none where the API answers); an image's referrers never stand for another's; and
``affidavit copy`` moves a bundle the API alone lists to a registry without the API, where it
verifies through the fallback tag index. This registry, like some others, lists a referrer's
config media type (the empty one) where the artifact's own ``artifactType`` belongs: the bundle
is still recognised by its annotations.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from affidavit.attestations.dsse import sign_envelope
from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.image import push_sample_image
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import AttachResult, attach, cosign_tag, index_tag
from affidavit.attestations.verify import verify_image
from affidavit.cli.main import main
from affidavit.demo.services import LocalRegistry, ReferrersRegistry

TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"
_n = itertools.count()


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    with RegistryClient() as c:
        yield c


@pytest.fixture
def signer(tmp_path: Path) -> tuple[Path, KeySigner]:
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    (tmp_path / "ci.key").write_bytes(private_pem)
    (tmp_path / "ci.pub").write_bytes(public_pem)
    return tmp_path / "ci.key", KeySigner(name="ci", public_key_pem=public_pem.decode())


def image_on(client: RegistryClient, host: str) -> ImageReference:
    repository = ImageReference.parse(f"{host}/acme/api{next(_n)}")
    digest = push_sample_image(client, repository, {"app/main.py": b"print(1)\n"}, "v1")
    return repository.with_digest(digest)


def attested(client: RegistryClient, image: ImageReference, key: Path) -> AttachResult:
    assert image.digest is not None
    statement = make_statement(image.name, image.digest, TYPE, {"commits": 3})
    envelope = sign_envelope(statement, load_signer(key)).to_json()
    return attach(client, image, TYPE, envelope=envelope)


def delete_tag(image: ImageReference, tag: str) -> None:
    """Remove a tag behind Affidavit's back (a registry cleanup policy, an operator)."""
    url = f"http://{image.registry}/v2/{image.repository}/manifests/{tag}"
    assert httpx.delete(url).status_code in (200, 202)


def test_the_api_lists_the_bundle_attest_pushed(
    client: RegistryClient, referrers_registry: ReferrersRegistry, signer: tuple[Path, KeySigner]
) -> None:
    image = image_on(client, referrers_registry.host)
    result = attested(client, image, signer[0])
    assert image.digest is not None
    listed = client.referrers(image, image.digest)
    assert listed is not None
    assert [m["digest"] for m in listed["manifests"]] == [result.referrer_digest]
    # this registry sends no OCI-Subject header: the fallback tag index is written as well
    assert not result.referrers_api
    assert client.find_manifest(image.with_tag(index_tag(image.digest))) is not None
    # an image's referrers never stand for another's
    other = image_on(client, referrers_registry.host)
    assert other.digest is not None
    assert (client.referrers(other, other.digest) or {}).get("manifests") == []
    assert verify_image(client, str(other), [signer[1]]).statements == ()


def test_a_bundle_only_the_api_lists_verifies(
    client: RegistryClient, referrers_registry: ReferrersRegistry, signer: tuple[Path, KeySigner]
) -> None:
    image = image_on(client, referrers_registry.host)
    attested(client, image, signer[0])
    assert image.digest is not None
    delete_tag(image, index_tag(image.digest))
    delete_tag(image, cosign_tag(image.digest))
    evidence = verify_image(client, str(image), [signer[1]])
    assert [(s.predicate_type, s.storage) for s in evidence.statements] == [(TYPE, "referrer")]
    assert evidence.rejected == ()


def test_copy_moves_a_bundle_only_the_api_lists_to_a_registry_without_it(
    client: RegistryClient,
    referrers_registry: ReferrersRegistry,
    mirror_registry: LocalRegistry,
    signer: tuple[Path, KeySigner],
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = image_on(client, referrers_registry.host)
    attested(client, image, signer[0])
    assert image.digest is not None
    delete_tag(image, index_tag(image.digest))
    delete_tag(image, cosign_tag(image.digest))
    destination = f"{mirror_registry.host}/mirror/api{next(_n)}"
    assert main(["copy", str(image), destination]) == 0, capsys.readouterr().err
    capsys.readouterr()
    copied = ImageReference.parse(f"{destination}@{image.digest}")
    # distribution 2.8 has no API: the bundle is listed by the fallback tag index it was given
    assert client.referrers(copied, image.digest) is None
    evidence = verify_image(client, str(copied), [signer[1]])
    assert [(s.predicate_type, s.storage) for s in evidence.statements] == [(TYPE, "tag-index")]


def test_copy_into_a_registry_with_the_api_leaves_evidence_that_verifies_there(
    client: RegistryClient,
    registry: LocalRegistry,
    referrers_registry: ReferrersRegistry,
    signer: tuple[Path, KeySigner],
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = image_on(client, registry.host)
    attested(client, image, signer[0])
    assert image.digest is not None
    destination = f"{referrers_registry.host}/promoted/api{next(_n)}"
    assert main(["copy", str(image), destination]) == 0, capsys.readouterr().err
    capsys.readouterr()
    copied = ImageReference.parse(f"{destination}@{image.digest}")
    listed = client.referrers(copied, image.digest)
    assert listed is not None and len(listed["manifests"]) == 1  # the registry indexed it
    evidence = verify_image(client, str(copied), [signer[1]])
    assert [s.predicate_type for s in evidence.statements] == [TYPE]
    assert evidence.rejected == ()
