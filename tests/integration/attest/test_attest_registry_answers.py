"""A registry's HEAD answer that is not what the distribution spec allows is the registry's error.

``affidavit verify IMAGE:TAG`` resolves the tag with a HEAD, whose ``Docker-Content-Digest`` and
``Content-Length`` it takes as given (there is no body to check them against). A malformed
length raised ``ValueError`` (a stack trace in the CLI, an internal error in the webhook), and a
malformed digest was blamed on the user's reference. Real HTTP servers on loopback
(``hostile_registries``).
"""

from __future__ import annotations

import pytest

from affidavit.attestations.reference import ImageReference
from affidavit.attestations.registry import RegistryClient
from affidavit.errors import AffidavitError, RegistryError
from hostile_registries import OCI_MANIFEST, Reply, Seen, hostile_registry

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        (
            {"Docker-Content-Digest": "sha256:\x1b[2Kab"},
            "Docker-Content-Digest 'sha256:\\x1b[2Kab'",
        ),
        ({"Docker-Content-Digest": "md5:abc"}, "Docker-Content-Digest 'md5:abc'"),
        ({"Docker-Content-Digest": DIGEST, "Content-Length": "lots"}, "Content-Length 'lots'"),
    ],
)
def test_a_malformed_head_answer_names_the_registry_and_the_field(
    headers: dict[str, str], named: str
) -> None:
    def answer(_: Seen) -> Reply:
        return Reply(200, {"Content-Type": OCI_MANIFEST, **headers})

    with hostile_registry(answer) as registry:
        ref = ImageReference.parse(f"{registry.host}/team/app:1")
        with RegistryClient(allowed_hosts=()) as client, pytest.raises(RegistryError) as e:
            client.head_manifest(ref)
    assert (
        e.value.message == f"registry {registry.host} answered HEAD {ref} with an invalid {named}"
    )


def test_a_well_formed_head_answer_is_taken() -> None:
    def answer(_: Seen) -> Reply:
        return Reply(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": DIGEST})

    with hostile_registry(answer) as registry:
        ref = ImageReference.parse(f"{registry.host}/team/app:1")
        with RegistryClient(allowed_hosts=()) as client:
            assert client.head_manifest(ref) == (DIGEST, OCI_MANIFEST, 0)


def test_a_length_in_other_digits_is_the_registrys_error_not_a_crash() -> None:
    """``'²'.isdigit()`` is true (a latin-1 header byte 0xB2), and ``int('²')`` raised
    ValueError: a stack trace in the CLI, an internal error in the webhook."""

    def answer(seen: Seen) -> Reply:
        headers = {"Content-Type": OCI_MANIFEST, "Content-Length": "\xb2"}
        if seen.method == "HEAD":
            headers["Docker-Content-Digest"] = DIGEST
        return Reply(200, headers)

    with hostile_registry(answer) as registry:
        ref = ImageReference.parse(f"{registry.host}/team/app:1")
        with RegistryClient(allowed_hosts=()) as client:
            with pytest.raises(RegistryError) as head:
                client.head_manifest(ref)
            with pytest.raises(AffidavitError) as get:
                client.get_manifest(ref.with_digest(DIGEST))
    assert head.value.message == (
        f"registry {registry.host} answered HEAD {ref} with an invalid Content-Length '\xb2'"
    )
    assert "invalid Content-Length '\xb2'" in get.value.message, get.value.message
