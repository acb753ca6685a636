"""What a cold digest costs on the wire, seen by a recording proxy in front of the real registry:
the image's HEAD (the existence check), the cosign tag, the referrers API and the fallback tag
index go out together, and that is all for what ``attach`` wrote (the envelope is embedded in
the cosign manifest, its bundle twin predicted); a layer written without its embedded copy (as
cosign writes it) is read as soon as the cosign manifest is in, without waiting for the other
three. The image's HEAD is sent once, not once to check the image and again to predict the
bundle twins, and a second cold digest reuses the first one's kept-alive connections. Counted
requests and requests observed in flight together; no clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attest_support import KeyPair, attest, strip_embedded

from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.store import cosign_tag, index_tag
from affidavit.attestations.verify import verify_image
from counting_proxy import counting_proxy

NewImage = Callable[..., ImageReference]


def _via(image: ImageReference, host: str) -> ImageReference:
    return ImageReference.parse(f"{host}/{image.repository}@{image.digest}")


def _signers(key: KeyPair) -> list[KeySigner]:
    return [key.trusted]


def test_a_cold_digest_is_four_requests_sent_together(
    registry: Any, client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    attest(client, image, key)
    digest = str(image.digest)
    # up to 5 s for the four to be in flight together: a loaded machine may take seconds to
    # send them, and one sent after another's answer would still be seen alone
    with (
        counting_proxy(registry.host, gather=4, gather_for=5) as proxy,
        RegistryClient() as via_proxy,
    ):
        found = EvidenceCache().lookup(via_proxy, str(_via(image, proxy.host)), _signers(key))
    assert found.result == "miss" and len(found.evidence.verified) == 1
    base = f"/v2/{image.repository}/"
    assert sorted(proxy.requests()) == sorted(
        [
            ("HEAD", f"{base}manifests/{digest}"),  # once: the check and the bundles' subject
            ("GET", f"{base}manifests/{cosign_tag(digest)}"),  # with the envelope embedded
            ("GET", f"{base}referrers/{digest}"),
            ("GET", f"{base}manifests/{index_tag(digest)}"),  # its bundle: the envelope's twin
        ]
    )
    assert [f.alongside for f in proxy.seen] == [4, 4, 4, 4]


def test_a_layer_without_its_embedded_copy_is_read_without_waiting_for_the_other_listings(
    registry: Any, client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    attached = attest(client, image, key)
    strip_embedded(client, image)  # as cosign writes it
    # the referrers API does not answer until the layer has been asked for
    hold = ("/referrers/", f"/blobs/{attached.envelope_digest}")
    with counting_proxy(registry.host, hold=hold) as proxy, RegistryClient() as via_proxy:
        evidence = verify_image(via_proxy, str(_via(image, proxy.host)), _signers(key))
    assert len(evidence.verified) == 1
    assert len(proxy.seen) == 5  # the four, and the layer
    (blob,) = (f for f in proxy.seen if "/blobs/" in f.path)
    # sent before the referrers API answered: while it was held, or before it was even asked
    # (the threads race; either way the layer read did not wait for it)
    assert not any("/referrers/" in path for path in blob.answered_before)
    cosign = next(f for f in proxy.seen if f.path.endswith(".att"))
    assert blob.connection == cosign.connection  # kept alive


def test_a_tag_is_resolved_by_one_head_that_also_names_the_subject(
    registry: Any, client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image(tag="v7")
    attest(client, image, key)
    tagged = f"{registry.host}/{image.repository}:v7"
    with counting_proxy(registry.host) as proxy, RegistryClient() as via_proxy:
        evidence = verify_image(via_proxy, tagged.replace(registry.host, proxy.host), _signers(key))
    assert len(evidence.verified) == 1
    heads = [path for method, path in proxy.requests() if method == "HEAD"]
    assert heads == [f"/v2/{image.repository}/manifests/v7"]
    assert len(proxy.seen) == 4


def test_the_next_cold_digest_reuses_the_kept_alive_connections(
    registry: Any, client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    images = [new_image(content=f"app {i}".encode()) for i in range(2)]
    for image in images:
        attest(client, image, key)
    cache = EvidenceCache()
    with counting_proxy(registry.host, gather=4) as proxy, RegistryClient() as via_proxy:
        cache.lookup(via_proxy, str(_via(images[0], proxy.host)), _signers(key))
        opened = {f.connection for f in proxy.seen}
        proxy.reset()
        cache.lookup(via_proxy, str(_via(images[1], proxy.host)), _signers(key))
        assert len(proxy.seen) == 4
        assert {f.connection for f in proxy.seen} <= opened
