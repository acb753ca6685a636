"""Attestations on a registry that has the OCI 1.1 referrers API (go-containerregistry's, the
real server, built from the module proxy), where every other test's registry (Debian's
distribution 2.8) has none.

What must hold: the API lists the bundle ``attest`` pushed; verification reads a bundle the API
alone lists (a registry whose fallback tag is gone, as after a cleanup, or never written, as
cosign writes none where the API answers); an image's referrers never stand for another's; and
``affidavit copy`` moves a bundle the API alone lists to a registry without the API, where it
verifies through the fallback tag index. This registry, like some others, lists a referrer's
config media type (the empty one) where the artifact's own ``artifactType`` belongs: the bundle
is still recognised by its annotations. A list the registry splits into pages (``Link``) is read
to its end, through a front that pages the real registry's list (no registry here pages), but
never from another host.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from affidavit.attestations.dsse import sign_envelope
from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.image import push_sample_image
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.registry import OCI_INDEX, ImageReference, RegistryClient
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import AttachResult, attach, cosign_tag, index_tag
from affidavit.attestations.verify import verify_image
from affidavit.cli.main import main
from affidavit.demo.services import LocalRegistry, ReferrersRegistry
from hostile_registries import Behaviour, Reply, Seen, hostile_registry

TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"
REVIEW = "https://affidavit.dev/attestations/code-review/v1"
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


def only_the_api_lists(
    client: RegistryClient, referrers_registry: ReferrersRegistry, key: Path, *types: str
) -> ImageReference:
    """A new image with one attestation of each of ``types``, whose bundles only the referrers
    API lists (its fallback tag index and cosign tag removed, as a cleanup might)."""
    image = image_on(client, referrers_registry.host)
    assert image.digest is not None
    for predicate_type in types:
        statement = make_statement(image.name, image.digest, predicate_type, {"n": 1})
        envelope = sign_envelope(statement, load_signer(key)).to_json()
        attach(client, image, predicate_type, envelope=envelope)
    delete_tag(image, index_tag(image.digest))
    delete_tag(image, cosign_tag(image.digest))
    return image


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
    image = only_the_api_lists(client, referrers_registry, signer[0], TYPE)
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
    image = only_the_api_lists(client, referrers_registry, signer[0], TYPE)
    assert image.digest is not None
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


def paginating(real: str, page_size: int = 1, next_host: str | None = None) -> Behaviour:
    """A front to the real registry at ``real`` that serves its referrers lists one entry a
    page with ``Link: <…>; rel="next"`` (as the OCI 1.1 spec lets a registry), the next page on
    ``next_host`` when given, and redirects every other request to the real registry."""

    def answer(req: Seen) -> Reply:
        path, _, query = req.path.partition("?")
        if "/referrers/" not in path:
            return Reply(307, {"Location": real + req.path})
        whole = json.loads(httpx.get(real + path).content)
        page = int(query.removeprefix("page=") or 0) if query.startswith("page=") else 0
        entries = sorted(whole["manifests"], key=lambda m: m["digest"])  # Go map order varies
        shown = {**whole, "manifests": entries[page * page_size : (page + 1) * page_size]}
        headers = {"Content-Type": OCI_INDEX}
        if (page + 1) * page_size < len(entries):
            there = f"http://{next_host}" if next_host else ""
            headers["Link"] = f'<{there}{path}?page={page + 1}>; rel="next"'
        return Reply(200, headers, json.dumps(shown).encode())

    return answer


def test_a_referrers_list_in_pages_is_read_to_its_end(
    client: RegistryClient, referrers_registry: ReferrersRegistry, signer: tuple[Path, KeySigner]
) -> None:
    image = only_the_api_lists(client, referrers_registry, signer[0], TYPE, REVIEW)
    with hostile_registry(paginating(referrers_registry.url)) as front:
        fronted = f"{front.host}/{image.repository}@{image.digest}"
        evidence = verify_image(client, fronted, [signer[1]])
        pages = [s.path for s in front.seen if "/referrers/" in s.path]
    assert sorted(s.predicate_type for s in evidence.statements) == sorted((TYPE, REVIEW))
    assert len(pages) == 2 and pages[1].endswith("?page=1")


def test_a_next_page_on_another_host_is_not_asked_for(
    client: RegistryClient, referrers_registry: ReferrersRegistry, signer: tuple[Path, KeySigner]
) -> None:
    """The request would carry this registry's credentials to that host: the list ends there,
    and what it lacks is evidence not found (a denial), never an outage."""
    image = only_the_api_lists(client, referrers_registry, signer[0], TYPE, REVIEW)
    with (
        hostile_registry(lambda _req: Reply(500)) as elsewhere,
        hostile_registry(paginating(referrers_registry.url, next_host=elsewhere.host)) as front,
    ):
        fronted = f"{front.host}/{image.repository}@{image.digest}"
        evidence = verify_image(client, fronted, [signer[1]])
    assert elsewhere.seen == []
    assert len(evidence.statements) == 1


def test_a_referrers_answer_that_is_not_json_is_no_list(
    client: RegistryClient, referrers_registry: ReferrersRegistry, signer: tuple[Path, KeySigner]
) -> None:
    """Garbage where the index belongs is read as no referrers API (the fallback tag index is
    still read), never an error that would count as the registry being down."""
    image = image_on(client, referrers_registry.host)
    attested(client, image, signer[0])

    def garbage(req: Seen) -> Reply:
        if "/referrers/" in req.path:
            return Reply(200, {"Content-Type": OCI_INDEX}, b"{not json")
        return Reply(307, {"Location": referrers_registry.url + req.path})

    with hostile_registry(garbage) as front:
        fronted = ImageReference.parse(f"{front.host}/{image.repository}@{image.digest}")
        assert fronted.digest is not None
        assert client.referrers(fronted, fronted.digest) is None
        evidence = verify_image(client, str(fronted), [signer[1]])
    assert [s.predicate_type for s in evidence.statements] == [TYPE]
