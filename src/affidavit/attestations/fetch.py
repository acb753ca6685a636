"""Read back every attestation stored beside an image, in both layouts, with few round trips.

``store.attach`` writes each attestation twice (cosign's ``.att`` tag and an OCI 1.1 bundle
artifact); a verifier has to read both, since other tools write only one. Reading is latency: the
independent requests go out together over the client's kept-alive connections, a cosign layer
whose descriptor embeds its bytes is not read again, and a bundle that ``attach`` wrote beside a
cosign layer already read is known by its digest without reading it again (``_twins``). One
size limit and one digest check apply to every blob whatever its layout.

An image's attestations are read whole before any is judged, so what one image may make a reader
fetch is bounded: at most ``MAX_ATTESTATIONS`` items in each layout, and ``MAX_TOTAL_BYTES`` of
them in all (a blob listed twice is read once). Anyone who may push to one repository of a
trusted registry could otherwise list tens of thousands of multi-megabyte layers beside an image
and have every admission of it fetch gigabytes; such an image is refused, naming the count, not
read in part (which of its attestations would count would then be the attacker's choice).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar, cast

from affidavit.attestations.dsse import DSSE_MEDIA_TYPE
from affidavit.attestations.evidence import Storage
from affidavit.attestations.exact_json import loads_numberless
from affidavit.attestations.parallel import FETCH_WORKERS, in_parallel
from affidavit.attestations.registry import (
    DEFAULT_MAX_BYTES,
    OCI_MANIFEST,
    BodyTooLargeError,
    ContentError,
    ImageReference,
    Manifest,
    RegistryClient,
    sha256_digest,
)
from affidavit.attestations.store import (
    ANNOTATION_BUNDLE_CONTENT,
    ANNOTATION_BUNDLE_PREDICATE_TYPE,
    ANNOTATION_PREDICATE_TYPE,
    BUNDLE_MEDIA_TYPE,
    EMPTY_MEDIA_TYPE,
    FetchedAttestation,
    _artifact,
    cosign_tag,
    embedded,
    index_tag,
    key_bundle,
)
from affidavit.errors import InputError, RegistryError

T = TypeVar("T")

#: The attestations read for one image in each layout (a cosign tag's layers; the bundles the
#: referrers API and the fallback tag list), other tools' included: ``attach`` adds one to each
#: a predicate type per run, and a daily ``cosign attest`` of a long-lived image one a day.
MAX_ATTESTATIONS = 1024
#: The bytes of attestation blobs (and bundle manifests) read for one image, both layouts
#: together: 16 envelopes of the largest size one may have, or thousands of real ones. A blob
#: larger than the per-blob limit is never read (that item's problem), so it counts nothing;
#: each is read with its declared size as its limit, so a size understated fails alone.
MAX_TOTAL_BYTES = 64 * 1024 * 1024
#: A bundle's artifact manifest lists its bundle (``attach`` writes about 700 bytes): a larger
#: one is refused as that item's problem, so 256 of them cannot hold gigabytes between reads.
MAX_BUNDLE_MANIFEST_BYTES = 1024 * 1024


def _read_layer(
    client: RegistryClient,
    image: ImageReference,
    storage: Storage,
    layer: dict[str, Any],
    predicate_type: str | None,
    max_layer_bytes: int,
) -> FetchedAttestation:
    digest = str(layer.get("digest", ""))
    media_type = str(layer.get("mediaType", ""))

    def failed(problem: str) -> FetchedAttestation:
        return FetchedAttestation(storage, media_type, digest, predicate_type, None, problem)

    size = layer.get("size")
    if isinstance(size, int) and size > max_layer_bytes:
        return failed(
            f"attestation layer {digest} is {size} bytes, over the {max_layer_bytes}-byte limit"
        )
    data = embedded(layer, max_layer_bytes)
    if data is not None:  # the descriptor carries the blob's exact bytes: no request
        return FetchedAttestation(storage, media_type, digest, predicate_type, data)
    limit = _declared_bytes(layer, max_layer_bytes)  # the image's total was checked with it
    try:
        data = client.get_blob(image, digest, max_bytes=limit)
    except BodyTooLargeError as e:
        said = "" if limit == max_layer_bytes else f" (the {limit} it declares)"
        return failed(
            f"attestation layer {digest} is {e.size} bytes, over the {limit}-byte limit{said}"
        )
    except ContentError as e:
        return failed(e.message)
    return FetchedAttestation(storage, media_type, digest, predicate_type, data)


def _cosign_layers(manifest: Manifest | None) -> list[tuple[Storage, dict[str, Any], str | None]]:
    """The cosign tag's DSSE layers, each digest once."""
    found: list[tuple[Storage, dict[str, Any], str | None]] = []
    seen: set[object] = set()
    for layer in (manifest.json().get("layers") or []) if manifest is not None else []:
        if isinstance(layer, dict) and layer.get("mediaType") == DSSE_MEDIA_TYPE:
            if layer.get("digest") in seen:
                continue
            seen.add(layer.get("digest"))
            annotations = layer.get("annotations") or {}
            found.append(("cosign-tag", layer, annotations.get(ANNOTATION_PREDICATE_TYPE)))
    return found


def _declared_bytes(layer: dict[str, Any], max_layer_bytes: int) -> int:
    """What reading ``layer`` may cost: its declared size (it is read with that as its limit),
    the per-blob limit when it declares none, nothing when it declares more (never read)."""
    size = layer.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        return size if size <= max_layer_bytes else 0
    return max_layer_bytes


def _check_limits(image: ImageReference, where: str, count: int, total: int) -> None:
    """Refuse an image whose attestations are more than a reader reads (see the module)."""
    fix = (
        "remove the stale attestations (`cosign clean --type attestation IMAGE`) and attest"
        " the image again"
    )
    if count > MAX_ATTESTATIONS:
        raise ContentError(
            f"{image} has {count:,} attestations in {where}, more than the"
            f" {MAX_ATTESTATIONS:,} a verifier reads for one image; the image's attestations"
            " are refused",
            hint=fix,
        )
    if total > MAX_TOTAL_BYTES:
        raise ContentError(
            f"{image}'s attestations in {where} add up to {total:,} bytes, more than the"
            f" {MAX_TOTAL_BYTES:,} a verifier reads for one image; the image's attestations"
            " are refused",
            hint=fix,
        )


def _lists_a_bundle(entry: object) -> bool:
    """Whether an index entry (the referrers API's or the fallback tag's) is a Sigstore bundle.

    A registry may list the config's media type (the empty one) where the artifact's own
    artifactType belongs, as go-containerregistry's does: the bundle's annotations still say
    what it is. Its manifest is read, and only its bundle layers are used."""
    if not isinstance(entry, dict):
        return False
    kind = entry.get("artifactType")
    if kind == BUNDLE_MEDIA_TYPE:
        return True
    annotations = entry.get("annotations")
    return (
        kind in (None, EMPTY_MEDIA_TYPE)
        and isinstance(annotations, dict)
        and ANNOTATION_BUNDLE_CONTENT in annotations
    )


def _referrer_descriptors(
    api: dict[str, Any] | None, tagged: Manifest | None
) -> list[tuple[Storage, dict[str, Any]]]:
    """Bundle referrers from the referrers API and from the fallback tag index, deduplicated."""
    found: list[tuple[Storage, dict[str, Any]]] = []
    seen: set[str] = set()
    sources: list[tuple[Storage, dict[str, Any] | None]] = [
        ("referrer", api),
        ("tag-index", tagged.json() if tagged else None),
    ]
    for storage, index in sources:
        for entry in (index or {}).get("manifests") or []:
            if not _lists_a_bundle(entry):
                continue
            if entry.get("digest") in seen:
                continue
            seen.add(str(entry.get("digest")))
            found.append((storage, entry))
    return found


def _bundle_manifest(
    client: RegistryClient, image: ImageReference, storage: Storage, entry: dict[str, Any]
) -> dict[str, Any] | FetchedAttestation:
    entry_digest = str(entry.get("digest", ""))
    limit = _declared_bytes(entry, MAX_BUNDLE_MANIFEST_BYTES) or MAX_BUNDLE_MANIFEST_BYTES
    try:
        manifest: dict[str, Any] = client.get_manifest(
            image.with_digest(entry_digest), max_bytes=limit
        ).json()
    except ContentError as e:
        return FetchedAttestation(storage, OCI_MANIFEST, entry_digest, None, None, e.message)
    return manifest


Subject = tuple[str, str, int]  # the image manifest's (media type, digest, size)


def digest_and_subject(client: RegistryClient, ref: ImageReference) -> tuple[str, Subject | None]:
    """The digest ``ref`` names and, when a tag had to be resolved for it, the image manifest's
    subject (one HEAD, whose answer is also what a bundle's ``subject`` names; give it to
    ``fetch``). A digest reference sends nothing here: its HEAD goes out with the attestation
    listings instead (``fetch``'s ``check_image``, when the subject is None)."""
    if ref.digest is not None:
        return ref.digest, None
    digest, media_type, size = client.head_manifest(ref)
    return digest, (media_type, digest, size)


def _subject(client: RegistryClient, image: ImageReference, required: bool) -> Subject | None:
    """The image manifest's (media type, digest, size), as an artifact's ``subject`` names it.

    ``required``: the image must exist (a missing one is ``client.resolve``'s RegistryError, and
    any other failure is raised too); otherwise a failure only means no twin is predicted.
    """
    try:
        digest, media_type, size = client.head_manifest(image)
    except RegistryError:
        if required:
            raise
        return None  # the listings say what is wrong, if anything; nothing is predicted
    return media_type, digest, size


def _cosign(
    client: RegistryClient,
    image: ImageReference,
    digest: str,
    max_layer_bytes: int,
    slot: threading.BoundedSemaphore,
) -> list[FetchedAttestation]:
    """The cosign tag's layers, read as soon as its manifest is in (not after the other
    listings: the layer reads are the second round trip, and only they depend on it). Each
    request holds one of the fetch's ``slot``s, so that the layers and the listings still in
    flight are at most ``FETCH_WORKERS`` requests at once."""
    with slot:
        manifest = client.find_manifest(image.with_tag(cosign_tag(digest)))
    layers = _cosign_layers(manifest)
    total = sum(_declared_bytes(layer, max_layer_bytes) for _, layer, _ in layers)
    _check_limits(image, "its cosign tag", len(layers), total)
    return in_parallel(
        [
            _holding(
                slot, partial(_read_layer, client, image, storage, layer, kind, max_layer_bytes)
            )
            for storage, layer, kind in layers
        ]
    )


def _holding(slot: threading.BoundedSemaphore, call: Callable[[], T]) -> Callable[[], T]:
    def held() -> T:
        with slot:
            return call()

    return held


_Twin = tuple[str, bytes, str]  # the bundle's digest and bytes, and its predicate type


#: ``key_bundle``'s bytes around the key id and the envelope (``store._json`` of its dict).
_BUNDLE_HEAD = b'{"mediaType":"%s","verificationMaterial":{"publicKey":{"hint":' % (
    BUNDLE_MEDIA_TYPE.encode()
)
_BUNDLE_MID = b'},"tlogEntries":[]},"dsseEnvelope":'


def _bundles_of(data: bytes) -> Iterator[bytes]:
    """``key_bundle(data)``: first as spliced around ``data`` itself, which is that bundle when
    the envelope is written as ``Envelope.to_json`` writes it (compact, ASCII: what ``attach``
    stores), then, if that differs, as ``key_bundle`` writes it out again (a copy of the layer's
    whole JSON, most of a fetch's own CPU for large envelopes). Nothing when it has none."""
    try:
        keyid = loads_numberless(data)["signatures"][0].get("keyid", "")
        spliced = _BUNDLE_HEAD + json.dumps(keyid).encode() + _BUNDLE_MID + data + b"}"
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return  # key_bundle refuses it too
    yield spliced
    try:
        exact = key_bundle(data)
    except (InputError, RecursionError):
        return
    if exact != spliced:
        yield exact


def _twins(
    read: Sequence[FetchedAttestation],
    subject: Subject,
    max_layer_bytes: int,
    listed: Collection[str],
) -> dict[str, _Twin]:
    """The referrer artifacts ``attach`` writes beside cosign layers already read, by digest,
    among the ``listed`` artifact digests.

    For a key-signed envelope both layouts hold the same statement: the bundle is ``key_bundle``
    of the envelope and its artifact manifest is ``_artifact`` of that bundle, both made
    deterministically, so their digests are known without asking the registry. A listed artifact
    with such a digest is content-addressed to exactly these bytes: reading its manifest and its
    layer would return what is here (and verifying it, what its cosign twin gave).
    """
    twins: dict[str, _Twin] = {}
    for item in read:
        if item.data is None or item.predicate_type is None:
            continue
        annotations = {
            ANNOTATION_BUNDLE_CONTENT: "dsse-envelope",
            ANNOTATION_BUNDLE_PREDICATE_TYPE: item.predicate_type,
        }
        for bundle in _bundles_of(item.data):
            if len(bundle) > max_layer_bytes:
                continue  # read it, so that it is refused as it would be
            digest = sha256_digest(bundle)
            manifest = sha256_digest(_artifact(digest, len(bundle), subject, annotations))
            if manifest in listed:
                twins[manifest] = (digest, bundle, item.predicate_type)
                break
    return twins


def fetch(
    client: RegistryClient,
    image: ImageReference,
    *,
    max_layer_bytes: int = DEFAULT_MAX_BYTES,
    subject: Subject | None = None,
    check_image: bool = False,
) -> list[FetchedAttestation]:
    """Every envelope (cosign tag) and bundle (referrers, tag index) stored beside ``image``.

    Requests that do not depend on each other go out together over the client's kept-alive
    connections: the image's own manifest (HEAD), the three listings and, as soon as the cosign
    tag's manifest is in, its layers (unless the manifest embeds them: ``store.embedded``);
    then the bundles' manifests, then their layers. A bundle artifact that ``attach`` wrote
    beside a cosign layer is not read again (``_twins``): what ``attach`` wrote costs four
    requests sent together, one round trip; a cosign layer written without its embedded copy,
    one request more, sent as soon as the cosign manifest is in.

    ``subject``: the image manifest's (media type, digest, size) when the caller has it (from
    resolving a tag): no HEAD is sent. ``check_image``: the HEAD doubles as the check that the
    image exists (a missing image raises ``client.resolve``'s RegistryError, and its failure is
    raised before any other), so a caller need not send it first, a round trip on its own.
    """
    if image.digest is None:
        raise InputError(f"image {image} has no digest; resolve it first")
    digest = image.digest
    slot = threading.BoundedSemaphore(FETCH_WORKERS)
    calls: list[Callable[[], object]] = [
        partial(_cosign, client, image, digest, max_layer_bytes, slot),
        _holding(slot, partial(client.referrers, image, digest)),
        _holding(slot, partial(client.find_manifest, image.with_tag(index_tag(digest)))),
    ]
    if subject is None:  # first: a missing image is the failure raised
        calls.insert(0, _holding(slot, partial(_subject, client, image, check_image)))
    *head, cosign, api, tagged = in_parallel(calls)
    if head:
        subject = cast("Subject | None", head[0])
    read_cosign = cast("list[FetchedAttestation]", cosign)
    entries = _referrer_descriptors(
        cast("dict[str, Any] | None", api), cast("Manifest | None", tagged)
    )
    # the bundle manifests to read count too (each at most what it declares, and 1 MiB)
    manifest_bytes = sum(
        _declared_bytes(entry, MAX_BUNDLE_MANIFEST_BYTES) or MAX_BUNDLE_MANIFEST_BYTES
        for _, entry in entries
    )
    _check_limits(image, "its referrers", len(entries), manifest_bytes)
    twins: dict[str, _Twin] = {}
    if entries and subject is not None:
        listed = {str(entry.get("digest")) for _, entry in entries}
        twins = _twins(read_cosign, subject, max_layer_bytes, listed)
    manifests = iter(
        in_parallel(
            [
                partial(_bundle_manifest, client, image, storage, entry)
                for storage, entry in entries
                if str(entry.get("digest")) not in twins
            ]
        )
    )
    # In the order the sequential walk had: cosign layers, then each bundle's (or its failure).
    slots: list[tuple[Storage, dict[str, Any], str | None] | FetchedAttestation] = [*read_cosign]
    for storage, entry in entries:
        twin = twins.get(str(entry.get("digest")))
        if twin is not None:
            bundle_digest, bundle, twin_type = twin
            slots.append(
                FetchedAttestation(storage, BUNDLE_MEDIA_TYPE, bundle_digest, twin_type, bundle)
            )
            continue
        manifest = next(manifests)
        if isinstance(manifest, FetchedAttestation):
            slots.append(manifest)
            continue
        if (manifest.get("subject") or {}).get("digest") != digest:
            continue  # listed for another image: not evidence about this one
        kind = (manifest.get("annotations") or {}).get(ANNOTATION_BUNDLE_PREDICATE_TYPE)
        for layer in manifest.get("layers") or []:
            if isinstance(layer, dict) and layer.get("mediaType") == BUNDLE_MEDIA_TYPE:
                slots.append((storage, layer, kind))
    unread = [slot for slot in slots if not isinstance(slot, FetchedAttestation)]
    _check_limits(image, "its referrers", len(slots) - len(read_cosign), 0)
    _check_limits(
        image,
        "its cosign tag and its referrers",
        0,
        sum(len(item.data or b"") for item in slots if isinstance(item, FetchedAttestation))
        + sum(_declared_bytes(layer, max_layer_bytes) for _, layer, _ in unread),
    )
    read = iter(
        in_parallel(
            [
                partial(_read_layer, client, image, slot[0], slot[1], slot[2], max_layer_bytes)
                for slot in unread
            ]
        )
    )
    return [slot if isinstance(slot, FetchedAttestation) else next(read) for slot in slots]
