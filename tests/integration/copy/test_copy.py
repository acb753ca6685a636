"""``affidavit copy SRC DST`` between two real registries (Debian's docker-registry, no
referrers API): the image arrives at the same digest with every attestation beside it, in both
layouts, verifiable there; a second copy moves nothing; a destination's own referrers survive
(the fallback index is merged) and its cosign tags are not replaced unawares; an index arrives
whole; and the user's mistakes and an unreachable registry end in the CLI's exit codes and
messages, not a stack trace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from copy_support import (
    PROVENANCE,
    REVIEW,
    Keys,
    attest,
    closed_port,
    delete_manifest,
    fallback_index,
    json_of,
    run,
    tag_bytes,
)

from affidavit.attestations.fetch import fetch
from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import OCI_INDEX, ImageReference, RegistryClient
from affidavit.attestations.verify import verify_fetched

NewImage = Callable[..., tuple[ImageReference, str]]


def _pinned(repository: str, digest: str | None) -> ImageReference:
    assert digest is not None
    return ImageReference.parse(repository).with_digest(digest)


def test_copy_keeps_every_attestation_valid_in_both_layouts(
    new_image: NewImage, client: RegistryClient, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    image, mirror = new_image()
    attest(client, image, keys, PROVENANCE)
    attest(client, image, keys, REVIEW)
    digest = image.digest

    code, out, err = run(capsys, "copy", f"{image.name}:v1", mirror)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"copied {image.name}@{digest} to {mirror}@{digest} (tag v1)",
        "image: 2 blobs copied, 0 already there",
        # the .att config and the two envelopes; the two bundles and the empty config
        "cosign attestations (.att): 2 envelopes, 3 blobs copied, 0 already there",
        "cosign signatures (.sig): none",
        "Sigstore bundles: 2 bundles, 3 blobs copied, 0 already there (fallback index written)",
    ]

    copied = _pinned(mirror, digest)
    assert client.resolve(ImageReference.parse(f"{mirror}:v1")) == digest
    assert client.get_manifest(copied).data == client.get_manifest(image).data
    assert tag_bytes(client, copied, ".att") == tag_bytes(client, image, ".att")
    assert fallback_index(client, copied) == fallback_index(client, image)

    # Both layouts are there, byte for byte, and each verifies on its own at the destination.
    at_source, at_mirror = fetch(client, image), fetch(client, copied)
    assert [(f.storage, f.digest, f.data) for f in at_mirror] == [
        (f.storage, f.digest, f.data) for f in at_source
    ]
    assert [f.storage for f in at_mirror] == ["cosign-tag"] * 2 + ["tag-index"] * 2
    for storage in ("cosign-tag", "tag-index"):
        alone = [f for f in at_mirror if f.storage == storage]
        evidence = verify_fetched(alone, copied, [keys.trusted])
        assert sorted(a.predicate_type for a in evidence.verified) == [PROVENANCE, REVIEW]
        assert {a.storage for a in evidence.verified} == {storage}
        assert evidence.rejected == ()

    # What a pipeline at the mirror runs: verify by the copied tag.
    code, out, err = run(capsys, "verify", f"{mirror}:v1", "--key", str(keys.public))
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"{mirror}:v1 resolved to {digest}"
    assert out.splitlines()[-1] == "2 verified, 0 rejected"


def test_a_second_copy_copies_nothing_new(
    new_image: NewImage, client: RegistryClient, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    image, mirror = new_image()
    attest(client, image, keys)
    assert run(capsys, "copy", str(image), f"{mirror}:stable")[0] == 0

    code, out, err = run(capsys, "copy", str(image), f"{mirror}:stable")
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        "image: 0 blobs copied, 2 already there",
        "cosign attestations (.att): 1 envelope, 0 blobs copied, 2 already there",
        "cosign signatures (.sig): none",
        "Sigstore bundles: 1 bundle, 0 blobs copied, 2 already there (fallback index up to date)",
        "nothing new: the destination already had all of it",
    ]
    code, out, _ = run(capsys, "copy", str(image), f"{mirror}:stable", "--json")
    document = json_of(out)
    assert code == 0
    assert document["nothingNew"] is True
    assert document["tag"] == "stable"
    assert document["image"] == {
        "manifestsCopied": 0,
        "manifestsAlreadyThere": 1,
        "blobsCopied": 0,
        "blobsAlreadyThere": 2,
        "bytesCopied": 0,
        "blobsMounted": 0,
    }
    assert document["bundles"] == {
        "bundles": 1,
        "fallbackIndex": "up to date",
        "manifestsCopied": 0,
        "manifestsAlreadyThere": 1,
        "blobsCopied": 0,
        "blobsAlreadyThere": 2,
        "bytesCopied": 0,
        "blobsMounted": 0,
    }


def test_the_json_output_states_the_same_facts(
    new_image: NewImage, client: RegistryClient, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    image, mirror = new_image()
    attest(client, image, keys)
    code, out, err = run(capsys, "copy", str(image), mirror, "--json")
    assert (code, err) == (0, "")
    document = json_of(out)
    assert document["source"] == f"{image.name}@{image.digest}"
    assert document["destination"] == f"{mirror}@{image.digest}"
    assert document["digest"] == image.digest
    assert document["tag"] is None  # a digest-only SRC and a tagless DST: by digest only
    assert document["manifests"] == 0
    assert document["attestations"]["envelopes"] == 1
    assert document["signatures"]["signatures"] == 0
    assert document["bundles"]["fallbackIndex"] == "written"
    assert document["nothingNew"] is False
    assert (document["image"]["blobsCopied"], document["image"]["manifestsCopied"]) == (2, 1)
    assert document["image"]["bytesCopied"] > 0
    # by digest only: no tag was made at the destination
    assert client.find_manifest(ImageReference.parse(f"{mirror}:latest")) is None
    assert client.resolve(_pinned(mirror, image.digest)) == image.digest


def test_the_destinations_own_referrers_are_kept_in_a_merged_index(
    new_image: NewImage,
    client: RegistryClient,
    keys: Keys,
    other_keys: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image, mirror = new_image(b"merged\n")
    attest(client, image, keys)
    # The mirror already holds the image, with a bundle attached there (its .att tag removed,
    # so that only its fallback index holds it).
    assert push_sample_image(client, mirror, {"app/main.py": b"merged\n"}, "v1") == image.digest
    copied = _pinned(mirror, image.digest)
    local = attest(client, copied, other_keys, REVIEW)
    delete_manifest(copied, local.cosign_manifest_digest)
    [source_referrer] = fallback_index(client, image)

    code, out, _ = run(capsys, "copy", f"{image.name}:v1", mirror)
    assert code == 0
    # the bundle is copied; the empty config blob the mirror's own referrer has is not
    bundles = "Sigstore bundles: 1 bundle, 1 blob copied, 1 already there (fallback index written)"
    assert bundles in out.splitlines()
    assert fallback_index(client, copied) == [local.referrer_digest, source_referrer]

    evidence = verify_fetched(fetch(client, copied), copied, [keys.trusted, other_keys.trusted])
    assert sorted((a.predicate_type, a.signer) for a in evidence.verified) == [
        (PROVENANCE, "release.pub"),
        (REVIEW, "mirror.pub"),
    ]

    code, out, _ = run(capsys, "copy", f"{image.name}:v1", mirror)  # no duplicates either
    assert code == 0
    assert "(fallback index up to date)" in out
    assert fallback_index(client, copied) == [local.referrer_digest, source_referrer]


def test_a_destination_att_tag_with_other_envelopes_is_replaced_only_with_force(
    new_image: NewImage,
    client: RegistryClient,
    keys: Keys,
    other_keys: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image, mirror = new_image(b"conflict\n")
    attest(client, image, keys)
    push_sample_image(client, mirror, {"app/main.py": b"conflict\n"}, "v1")
    copied = _pinned(mirror, image.digest)
    local = attest(client, copied, other_keys, REVIEW)
    before = tag_bytes(client, copied, ".att")
    tag = f"{image.digest}.att".replace(":", "-")

    code, out, err = run(capsys, "copy", str(image), mirror)
    assert (code, out) == (2, "")
    assert err == (
        f"error: {mirror}:{tag} holds 1 cosign attestation layer(s) that {image.name}:{tag} does "
        f"not (first {local.envelope_digest}); copying would replace them\n"
        "  hint: pass --force to replace the destination's tag (its bundle referrers are kept), "
        "or attach that evidence at the source first\n"
    )
    assert tag_bytes(client, copied, ".att") == before  # nothing was written
    assert fallback_index(client, copied) == [local.referrer_digest]

    code, _, _ = run(capsys, "copy", str(image), mirror, "--force")
    assert code == 0
    assert tag_bytes(client, copied, ".att") == tag_bytes(client, image, ".att")
    # the mirror's own attestation still verifies through its bundle
    evidence = verify_fetched(fetch(client, copied), copied, [other_keys.trusted])
    assert [(a.predicate_type, a.storage) for a in evidence.verified] == [(REVIEW, "tag-index")]


def test_a_source_att_that_grew_replaces_the_copy_without_force(
    new_image: NewImage, client: RegistryClient, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    image, mirror = new_image()
    attest(client, image, keys, PROVENANCE)
    assert run(capsys, "copy", str(image), mirror)[0] == 0
    attest(client, image, keys, REVIEW)  # attested again after the first copy: nothing is lost

    code, out, _ = run(capsys, "copy", str(image), mirror)
    assert code == 0
    assert "cosign attestations (.att): 2 envelopes, 2 blobs copied, 1 already there" in out
    copied = _pinned(mirror, image.digest)
    assert tag_bytes(client, copied, ".att") == tag_bytes(client, image, ".att")
    assert len(fallback_index(client, copied)) == 2


def _push_index(client: RegistryClient, repository: str, files: list[bytes]) -> ImageReference:
    """An OCI index of one sample image per entry of ``files`` (two platforms), tagged v1."""
    ref = ImageReference.parse(repository)
    entries = []
    for arch, content in zip(("amd64", "arm64"), files, strict=True):
        digest = push_sample_image(client, ref, {"app/main.py": content}, arch)
        size = len(client.get_manifest(ref.with_digest(digest)).data)
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": size,
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    digest, _ = client.put_manifest(ref.with_tag("v1"), index.encode(), OCI_INDEX)
    return ref.with_digest(digest)


def test_a_multi_platform_index_is_copied_whole_with_each_platforms_evidence(
    registry: Any,
    mirror_registry: Any,
    client: RegistryClient,
    keys: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = _push_index(client, f"{registry.host}/acme/multi", [b"amd64\n", b"arm64\n"])
    children = [m["digest"] for m in client.get_manifest(index).json()["manifests"]]
    attest(client, index, keys, PROVENANCE)
    attest(client, index.with_digest(children[1]), keys, REVIEW)  # one platform's own
    mirror = f"{mirror_registry.host}/mirror/multi"

    code, out, err = run(capsys, "copy", f"{index.name}:v1", mirror)
    assert (code, err) == (0, "")
    assert out.splitlines()[:3] == [
        f"copied {index.name}@{index.digest} to {mirror}@{index.digest} (tag v1)",
        "image: index of 2 manifests, 4 blobs copied, 0 already there",
        # each envelope, and each .att's own config
        "cosign attestations (.att): 2 envelopes, 4 blobs copied, 0 already there",
    ]
    copied = _pinned(mirror, index.digest)
    assert client.get_manifest(copied).data == client.get_manifest(index).data
    for child in children:
        manifest = client.get_manifest(copied.with_digest(child))
        assert manifest.data == client.get_manifest(index.with_digest(child)).data
        document = manifest.json()
        for blob in [document["config"], *document["layers"]]:
            assert client.get_blob(copied, blob["digest"]) == client.get_blob(index, blob["digest"])

    for ref, predicate_type in ((f"{mirror}:v1", PROVENANCE), (f"{mirror}@{children[1]}", REVIEW)):
        code, out, _ = run(capsys, "verify", ref, "--key", str(keys.public), "--json")
        assert code == 0
        [verified] = json.loads(out)["verified"]
        assert verified["predicateType"] == predicate_type


def test_a_blob_over_the_limit_is_refused_before_anything_is_written(
    new_image: NewImage, client: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    image, mirror = new_image(os.urandom(3 * 1024 * 1024))  # random: gzip keeps it > 2 MiB
    layer = client.get_manifest(image).json()["layers"][0]
    code, out, err = run(capsys, "copy", str(image), mirror, "--max-blob-mib", "2")
    assert (code, out) == (5, "")
    assert err == (
        f"error: blob {layer['digest']} in {image.name} is {layer['size']} bytes, over the "
        "2097152-byte limit (2 MiB) of a copy\n"
        "  hint: raise --max-blob-mib if a blob that large is expected\n"
    )
    assert client.find_manifest(_pinned(mirror, image.digest)) is None
    assert run(capsys, "copy", str(image), mirror, "--max-blob-mib", "4")[0] == 0


def test_a_missing_source_exits_5_naming_the_image(
    registry: Any, mirror_registry: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"{registry.host}/acme/absent:v1"
    code, out, err = run(capsys, "copy", source, f"{mirror_registry.host}/mirror/absent")
    assert (code, out) == (5, "")
    assert err == (
        f"error: image {source} not found in the registry\n"
        "  hint: check the repository and digest, or push the image first\n"
    )


def test_a_destination_with_a_digest_exits_2(
    new_image: NewImage, capsys: pytest.CaptureFixture[str]
) -> None:
    image, mirror = new_image()
    destination = f"{mirror}@{image.digest}"
    code, out, err = run(capsys, "copy", str(image), destination)
    assert (code, out) == (2, "")
    assert err == (
        f"error: DST {destination} names a digest; the copy keeps the digest of SRC\n"
        "  hint: give DST as REGISTRY/REPO or REGISTRY/REPO:TAG\n"
    )


def test_a_bad_reference_exits_2(new_image: NewImage, capsys: pytest.CaptureFixture[str]) -> None:
    image, _ = new_image()
    code, _, err = run(capsys, "copy", str(image), "127.0.0.1:1/Mirror/App")
    assert code == 2
    assert err.startswith("error: image reference '127.0.0.1:1/Mirror/App' has an invalid")
    assert "Traceback" not in err


def test_an_unreachable_destination_exits_5(
    new_image: NewImage, capsys: pytest.CaptureFixture[str]
) -> None:
    image, _ = new_image()
    host = f"127.0.0.1:{closed_port()}"
    code, out, err = run(capsys, "copy", str(image), f"{host}/mirror/app")
    assert (code, out) == (5, "")
    assert err == (
        f"error: registry {host} is unreachable: connection refused; check the address and "
        "that the registry is running\n"
    )


def test_copy_help_names_its_options_and_loads_only_the_cli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "copy", "--help")
    assert code == 0
    assert out.startswith("Usage: affidavit copy [OPTIONS] {SRC} {DST}")
    for option in ("--insecure-registry", "--registry-config", "--ca-bundle", "--max-blob-mib"):
        assert option in out
    # CLI start is benchmarked: the registry code is imported by the command, not its --help
    probe = (
        "import sys\n"
        "from affidavit.cli.main import main\n"
        "assert main(['copy', '--help']) == 0\n"
        "heavy = ('affidavit.attestations.copy', 'affidavit.attestations.registry', "
        "'sqlalchemy', 'kubernetes', 'fastapi', 'kopf')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "[]", done.stderr


def test_a_promotion_within_one_registry_mounts_the_blobs_instead_of_moving_them(
    new_image: NewImage, client: RegistryClient, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    """staging -> production on the same registry: the registry links each blob from the
    source repository (cross-repository mount), so no layer travels through the copier."""
    image, _ = new_image(b"promoted\n")
    attest(client, image, keys, PROVENANCE)
    production = f"{image.registry}/production/{image.repository.rsplit('/', 1)[-1]}"
    code, out, err = run(capsys, "copy", f"{image.name}:v1", production)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1] == "image: 0 blobs copied, 2 mounted, 0 already there"
    assert (
        lines[2]
        == "cosign attestations (.att): 1 envelope, 0 blobs copied, 2 mounted, 0 already there"
    )
    copied = _pinned(production, image.digest)
    for digest in [d["digest"] for d in client.get_manifest(copied).json()["layers"]]:
        assert client.get_blob(copied, digest) == client.get_blob(image, digest)
    found = fetch(client, copied)
    assert [f.storage for f in found] == ["cosign-tag", "tag-index"]
    for storage in ("cosign-tag", "tag-index"):
        alone = [f for f in found if f.storage == storage]
        assert [
            a.predicate_type for a in verify_fetched(alone, copied, [keys.trusted]).verified
        ] == [PROVENANCE]
    code, out, _ = run(capsys, "copy", f"{image.name}:v1", production, "--json")
    assert json_of(out)["image"]["blobsMounted"] == 0  # a second copy finds them there
