"""Promote an image to another registry or repository with all the evidence stored beside it.

Operators mirror images into a registry inside a region (data residency) or into an air-gapped
registry, and the clusters there must admit them on the same evidence. Attestations name their
image by manifest digest alone (the webhook compares subjects by digest, never by registry or
repository), so a copy that keeps every digest keeps every attestation valid. This module copies
bytes verbatim: the image manifest (an index with every manifest it lists), every blob they
refer to, cosign's ``sha256-<hex>.att`` and ``.sig`` tags, and the artifacts (Sigstore bundles
among them) whose ``subject`` is the image, for the image and for each manifest of an index, as
``cosign copy`` does. What is not content-addressed is made again at the destination: the tags,
and the referrers fallback tag index, which is *merged* with the destination's own so that no
referrer already there is dropped.

Every manifest is read from the source, and the destination's cosign tags compared with it,
before anything is written: a copy that would replace destination evidence the source lacks (a
``.att`` layer attached at the mirror) stops unless ``force`` says so. Each blob is asked for at the
destination first (HEAD), so a second copy moves nothing; within one registry it is mounted
from the source repository (no bytes move) where the registry agrees. Blobs are copied side by side (as
cosign's copy does: one at a time left a copy of 64 MiB at half cosign's speed), at most
``FETCH_WORKERS`` requests at once, each streamed from the source's answer into the
destination's upload (``RegistryClient.stream_blob``): a copy holds a read's worth of each blob,
never the blob, so an image with layers of gigabytes copies in the memory of one with kilobytes
(reading blobs whole, a 64 MiB image took 178 MiB of memory). Its length and digest are checked
as it passes. Only a blob whose manifest gives no size (which the image specifications forbid)
is read whole, within ``MEMORY_BUDGET`` between the blobs copied side by side.
``max_blob_bytes`` bounds the blob a copy accepts, checked against the manifests before anything
is written.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

from affidavit.attestations.dsse import DSSE_MEDIA_TYPE
from affidavit.attestations.parallel import in_parallel
from affidavit.attestations.reference import is_digest
from affidavit.attestations.registry import (
    DOCKER_LIST,
    MANIFEST_TYPES,
    OCI_INDEX,
    BodyTooLargeError,
    ContentError,
    ImageReference,
    Manifest,
    RegistryClient,
)
from affidavit.attestations.store import BUNDLE_MEDIA_TYPE, cosign_tag, index_tag
from affidavit.errors import RegistryError, UsageError

__all__ = ["DEFAULT_MAX_BLOB_BYTES", "CopyResult", "Part", "Tally", "copy_image", "signature_tag"]

MIB = 1024 * 1024
DEFAULT_MAX_BLOB_BYTES = 16 * 1024 * MIB
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
#: Indexes listing indexes, at most this deep (content addressing rules out cycles, not depth).
MAX_NESTING = 4
#: Bytes that blobs without a declared size, read whole, may hold in memory between them; a
#: larger one is copied alone, and one over ``max_blob_bytes`` refused while it streams in.
MEMORY_BUDGET = 256 * MIB

#: Fallback index states: written, already holding every referrer, or left to the registry's
#: own referrers API (the destination indexed the subjects itself).
WRITTEN, UP_TO_DATE, NOT_NEEDED = "written", "up to date", "not needed"


def signature_tag(digest: str) -> str:
    """cosign's signature tag for an image digest: ``sha256-<hex>.sig``."""
    return digest.replace(":", "-") + ".sig"


@dataclass(frozen=True)
class Tally:
    """What moved: manifests and blobs copied, and those the destination already had."""

    manifests_copied: int = 0
    manifests_present: int = 0
    blobs_copied: int = 0
    blobs_present: int = 0
    bytes_copied: int = 0
    blobs_mounted: int = 0  # linked from the source repository of the same registry

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def moved(self) -> bool:
        return bool(self.manifests_copied or self.blobs_copied or self.blobs_mounted)


@dataclass(frozen=True)
class Part:
    """One kind of evidence: how many items (envelopes, signatures, artifacts) and what moved."""

    count: int = 0
    tally: Tally = Tally()

    def __add__(self, other: Part) -> Part:
        return Part(self.count + other.count, self.tally + other.tally)


@dataclass(frozen=True)
class CopyResult:
    """What ``copy_image`` did."""

    source: ImageReference  # repository and digest
    destination: ImageReference  # repository and the same digest
    tag: str | None  # the destination tag pushed; None: by digest only
    media_type: str
    manifests: int  # the manifests an index lists (0 for a single image)
    image: Tally
    attestations: Part  # cosign .att: DSSE envelopes
    signatures: Part  # cosign .sig: signature layers
    bundles: Part  # referrers that are Sigstore bundles
    other_referrers: Part
    fallback_index: str | None  # WRITTEN, UP_TO_DATE, NOT_NEEDED; None without referrers
    skipped_referrers: int  # listed, but missing at the source or about another image

    @property
    def moved(self) -> bool:
        """Whether anything was written to the destination."""
        parts = (self.attestations, self.signatures, self.bundles, self.other_referrers)
        return (
            self.image.moved or any(p.tally.moved for p in parts) or self.fallback_index == WRITTEN
        )


@dataclass(frozen=True)
class _Evidence:
    """What the source keeps beside one manifest; each tree lists children before parents."""

    subject: str
    att: list[Manifest] | None
    sig: list[Manifest] | None
    referrers: list[list[Manifest]]
    skipped: int


def _layers(manifest: Manifest) -> list[dict[str, Any]]:
    layers = manifest.json().get("layers") or []
    return (
        [layer for layer in layers if isinstance(layer, dict)] if isinstance(layers, list) else []
    )


def _artifact_type(manifest: Manifest) -> str | None:
    """The referrers API's ``artifactType`` of a manifest: its own, else its config's type."""
    document = manifest.json()
    config = document.get("config")
    value = document.get("artifactType") or (
        config.get("mediaType") if isinstance(config, dict) else None
    )
    return value if isinstance(value, str) else None


def _index_entry(manifest: Manifest) -> dict[str, Any]:
    """The descriptor of a referrer in the fallback index, as ``store.attach`` writes one."""
    entry: dict[str, Any] = {
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": len(manifest.data),
    }
    artifact_type = _artifact_type(manifest)
    if artifact_type is not None:
        entry["artifactType"] = artifact_type
    annotations = manifest.json().get("annotations")
    if isinstance(annotations, dict) and annotations:
        entry["annotations"] = annotations
    return entry


class _Budget:
    """Bytes that blobs copied side by side may hold in memory at once."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._changed = threading.Condition()

    @contextmanager
    def holding(self, size: int) -> Iterator[None]:
        """Wait until ``size`` more bytes fit (or nothing else is held), hold them meanwhile."""
        with self._changed:
            self._changed.wait_for(lambda: self._used == 0 or self._used + size <= self._limit)
            self._used += size
        try:
            yield
        finally:
            with self._changed:
                self._used -= size
                self._changed.notify_all()


class _Copier:
    """One copy's requests: reads from ``src``, writes to ``dst`` (both repository references)."""

    def __init__(
        self,
        client: RegistryClient,
        src: ImageReference,
        dst: ImageReference,
        max_blob_bytes: int,
    ) -> None:
        self.client = client
        self.src = src
        self.dst = dst
        self.max_blob_bytes = max_blob_bytes
        self._claimed = threading.Lock()  # which part a blob is counted under
        self._copied: dict[str, Tally] = {}  # blobs copied side by side, not yet counted
        self._budget = _Budget(MEMORY_BUDGET)  # a larger blob waits, then goes alone

    # -- reading the source ------------------------------------------------------------------

    def digest_at(self, value: object, where: Manifest) -> str:
        """A digest a manifest names, checked before it goes into a URL."""
        if not isinstance(value, str) or not is_digest(value):
            raise RegistryError(
                f"manifest {self.src.name}@{where.digest} refers to {str(value)[:80]!r}, which is "
                "not a sha256 digest; copy handles sha256 content only"
            )
        return value

    def tree(self, root: Manifest, depth: int = 0) -> list[Manifest]:
        """``root`` and every manifest it lists (an index), children first, each read once."""
        if root.media_type not in MANIFEST_TYPES:
            kind = root.media_type or "manifest without a media type"
            raise RegistryError(
                f"{self.src.name}@{root.digest} is a {kind}; copy handles OCI and Docker v2 "
                "image manifests and indexes"
            )
        if root.media_type not in INDEX_TYPES:
            self.check_sizes(root)
            return [root]
        if depth >= MAX_NESTING:
            raise RegistryError(
                f"{self.src.name}@{root.digest} nests indexes more than {MAX_NESTING} deep"
            )
        found: dict[str, Manifest] = {}
        children = root.json().get("manifests") or []
        for entry in children if isinstance(children, list) else []:
            digest = self.digest_at(entry.get("digest") if isinstance(entry, dict) else entry, root)
            if digest in found:
                continue
            child = self.client.get_manifest(self.src.with_digest(digest))
            for manifest in self.tree(child, depth + 1):
                found.setdefault(manifest.digest, manifest)
        found[root.digest] = root
        return list(found.values())

    def blobs(self, manifest: Manifest) -> list[tuple[str, int | None]]:
        """The blobs an image manifest refers to (config, layers): digest and declared size.
        Non-distributable layers with their own ``urls`` are fetched from there, not copied."""
        if manifest.media_type in INDEX_TYPES:
            return []
        config = manifest.json().get("config")
        found: list[tuple[str, int | None]] = []
        for descriptor in [config, *_layers(manifest)]:
            if not isinstance(descriptor, dict):
                continue
            kind = str(descriptor.get("mediaType", ""))
            if descriptor.get("urls") and ("foreign" in kind or "nondistributable" in kind):
                continue
            size = descriptor.get("size")
            digest = self.digest_at(descriptor.get("digest"), manifest)
            found.append((digest, size if isinstance(size, int) else None))
        return found

    def check_sizes(self, manifest: Manifest) -> None:
        """Refuse, before anything is written, a blob declared larger than the limit."""
        for digest, size in self.blobs(manifest):
            if size is not None and size > self.max_blob_bytes:
                raise self.too_large(digest, size)

    def too_large(self, digest: str, size: int) -> ContentError:
        return ContentError(
            f"blob {digest} in {self.src.name} is {size} bytes, over the {self.max_blob_bytes}"
            f"-byte limit ({self.max_blob_bytes / MIB:g} MiB) of a copy",
            hint="raise --max-blob-mib if a blob that large is expected",
        )

    def evidence(self, subject: str) -> _Evidence:
        """The cosign tags and the referrers of ``subject`` at the source (the referrers API and
        the fallback tag index, deduplicated; each manifest read and its subject checked: a
        fallback index is a tag anyone with push access writes)."""
        find = self.client.find_manifest
        att, sig, tagged = in_parallel(
            [
                partial(find, self.src.with_tag(tag(subject)))
                for tag in (cosign_tag, signature_tag, index_tag)
            ]
        )
        api = self.client.referrers(self.src, subject)
        listed: dict[str, None] = {}
        for index in (api, tagged.json() if tagged is not None else None):
            entries = (index or {}).get("manifests") or []
            for entry in entries if isinstance(entries, list) else []:
                digest = entry.get("digest") if isinstance(entry, dict) else None
                if isinstance(digest, str) and is_digest(digest):
                    listed.setdefault(digest)
        referrers: list[list[Manifest]] = []
        skipped = 0
        manifests = in_parallel([partial(find, self.src.with_digest(d)) for d in listed])
        for manifest in manifests:
            named = manifest.json().get("subject") if manifest is not None else None
            if manifest is None or not isinstance(named, dict) or named.get("digest") != subject:
                skipped += 1
                continue
            referrers.append(self.tree(manifest))
        return _Evidence(
            subject,
            None if att is None else self.tree(att),
            None if sig is None else self.tree(sig),
            referrers,
            skipped,
        )

    def refuse_dropping(self, tree: list[Manifest] | None, tag: str, what: str) -> None:
        """A destination cosign tag may be replaced only by one holding all its layers."""
        if tree is None:
            return
        current = self.client.find_manifest(self.dst.with_tag(tag))
        if current is None or current.digest == tree[-1].digest:
            return
        kept = {layer.get("digest") for layer in _layers(tree[-1])}
        dropped = [d for layer in _layers(current) if (d := layer.get("digest")) not in kept]
        if dropped:
            raise UsageError(
                f"{self.dst.name}:{tag} holds {len(dropped)} {what} layer(s) that "
                f"{self.src.name}:{tag} does not (first {str(dropped[0])[:80]}); copying would "
                "replace them",
                hint="pass --force to replace the destination's tag (its bundle referrers are "
                "kept), or attach that evidence at the source first",
            )

    # -- writing the destination ---------------------------------------------------------------

    def copy_blobs(self, trees: Sequence[list[Manifest]]) -> None:
        """Copy every blob of ``trees`` side by side (at most ``FETCH_WORKERS`` requests at
        once, within the memory budget); ``put`` then counts each under the first part that
        lists it."""
        wanted: dict[str, int | None] = {}
        for tree in trees:
            for manifest in tree:
                for digest, size in self.blobs(manifest):
                    wanted.setdefault(digest, size)
        calls = [partial(self._copy_blob, digest, size) for digest, size in wanted.items()]
        self._copied.update(zip(wanted, in_parallel(calls), strict=True))

    def _copy_blob(self, digest: str, size: int | None) -> Tally:
        if self.client.has_blob(self.dst, digest):
            return Tally(blobs_present=1)
        if self.src.registry == self.dst.registry and self.client.mount_blob(
            self.dst, digest, self.src.repository
        ):
            return Tally(blobs_mounted=1)
        if size is not None:  # streamed: a read's worth in memory at a time
            self.client.stream_blob(self.src, self.dst, digest, size)
            return Tally(blobs_copied=1, bytes_copied=size)
        with self._budget.holding(size if size is not None else self.max_blob_bytes):
            try:
                data = self.client.get_blob(self.src, digest, max_bytes=self.max_blob_bytes)
            except BodyTooLargeError as e:
                raise self.too_large(digest, e.size) from e
            self.client.put_blob(self.dst, data)
        return Tally(blobs_copied=1, bytes_copied=len(data))

    def blob(self, digest: str) -> Tally:
        """What ``copy_blobs`` did with ``digest``, counted once: under the first part that
        lists it (every blob ``put`` meets was copied by ``copy_blobs`` first)."""
        with self._claimed:
            return self._copied.pop(digest, Tally())

    def put(self, tree: list[Manifest], tag: str | None) -> tuple[Tally, bool]:
        """Copy a tree's blobs and manifests, children first; the root under ``tag`` (or its
        digest). Returns what moved and whether the registry indexed a ``subject`` it named."""
        tally, indexed = Tally(), False
        for manifest in tree:
            for digest, _ in self.blobs(manifest):
                tally += self.blob(digest)
            is_root = manifest is tree[-1]
            target = (
                self.dst.with_tag(tag) if is_root and tag else self.dst.with_digest(manifest.digest)
            )
            current = self.client.find_manifest(target)
            if current is not None and current.digest == manifest.digest:
                tally += Tally(manifests_present=1)
                continue
            _, oci_subject = self.client.put_manifest(target, manifest.data, manifest.media_type)
            indexed = indexed or oci_subject
            tally += Tally(manifests_copied=1)
        return tally, indexed

    def merge_index(self, subject: str, referrers: list[Manifest]) -> str:
        """Add the referrers to the destination's fallback tag index, keeping its entries."""
        ref = self.dst.with_tag(index_tag(subject))
        current = self.client.find_manifest(ref)
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX}
        if current is not None:
            index = current.json()
            if current.media_type != OCI_INDEX or not isinstance(index.get("manifests", []), list):
                raise RegistryError(
                    f"{ref} is a {current.media_type or 'manifest'}, not the OCI index a "
                    "referrers fallback tag holds; it was not replaced",
                    hint="remove that tag at the destination, then copy again",
                )
        entries: list[Any] = list(index.get("manifests") or [])
        known = {entry.get("digest") for entry in entries if isinstance(entry, dict)}
        added = [_index_entry(m) for m in referrers if m.digest not in known]
        if not added:
            return UP_TO_DATE
        merged = {**index, "mediaType": OCI_INDEX, "manifests": entries + added}
        self.client.put_manifest(ref, json.dumps(merged, separators=(",", ":")).encode(), OCI_INDEX)
        return WRITTEN


def copy_image(
    client: RegistryClient,
    source: ImageReference,
    destination: ImageReference,
    *,
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
    force: bool = False,
) -> CopyResult:
    """Copy the image ``source`` names (tag or digest) and its evidence to ``destination``
    (a repository, with or without a tag), bytes verbatim, and check that the destination
    resolves to the source's digest.

    The destination tag is ``destination``'s, else ``source``'s (``latest`` when it names
    neither tag nor digest); a digest-only source and a tagless destination push by digest.

    Raises:
        UsageError: ``destination`` names a digest; or a destination ``.att``/``.sig`` tag holds
            layers the source's lacks and ``force`` is not set (nothing was written).
        RegistryError: a registry is unreachable or refused, the image is missing, a blob is
            over ``max_blob_bytes`` (``ContentError``), or the destination did not end up at
            the source's digest.
    """
    if destination.digest is not None:
        raise UsageError(
            f"destination {destination} names a digest; a copy has the source's digest",
            hint="give the destination as REGISTRY/REPO or REGISTRY/REPO:TAG",
        )
    tag = destination.tag or source.tag or (None if source.digest else "latest")
    root = client.get_manifest(source)  # a missing image: RegistryError naming it
    digest = root.digest
    src = ImageReference(source.registry, source.repository, digest=digest)
    dst = ImageReference(destination.registry, destination.repository, digest=digest)
    copier = _Copier(client, src, dst, max_blob_bytes)

    # Read everything first; compare the destination's cosign tags before writing anything.
    image_tree = copier.tree(root)
    evidence = [copier.evidence(m.digest) for m in reversed(image_tree)]  # the image's first
    if not force:
        for found in evidence:
            copier.refuse_dropping(found.att, cosign_tag(found.subject), "cosign attestation")
            copier.refuse_dropping(found.sig, signature_tag(found.subject), "cosign signature")

    copier.copy_blobs(
        [
            image_tree,
            *(tree for found in evidence for tree in (found.att, found.sig) if tree is not None),
            *(tree for found in evidence for tree in found.referrers),
        ]
    )
    image, _ = copier.put(image_tree, tag)
    attestations, signatures, bundles, others = Part(), Part(), Part(), Part()
    states: list[str] = []
    for found in evidence:
        if found.att is not None:
            moved, _ = copier.put(found.att, cosign_tag(found.subject))
            envelopes = [x for x in _layers(found.att[-1]) if x.get("mediaType") == DSSE_MEDIA_TYPE]
            attestations += Part(len(envelopes), moved)
        if found.sig is not None:
            moved, _ = copier.put(found.sig, signature_tag(found.subject))
            signatures += Part(len(_layers(found.sig[-1])), moved)
        if not found.referrers:
            continue
        indexed, wrote = False, False
        put = in_parallel([partial(copier.put, tree, None) for tree in found.referrers])
        for tree, (moved, oci_subject) in zip(found.referrers, put, strict=True):
            indexed, wrote = indexed or oci_subject, wrote or moved.manifests_copied > 0
            if _artifact_type(tree[-1]) == BUNDLE_MEDIA_TYPE:
                bundles += Part(1, moved)
            else:
                others += Part(1, moved)
        if not wrote:  # nothing was PUT to tell: ask whether the registry indexes subjects
            indexed = client.referrers(dst, found.subject) is not None
        roots = [tree[-1] for tree in found.referrers]
        states.append(NOT_NEEDED if indexed else copier.merge_index(found.subject, roots))

    landed = client.head_manifest(dst.with_tag(tag) if tag else dst)[0]
    if landed != digest:
        raise RegistryError(
            f"after the copy {dst.name}:{tag} resolves to {landed}, not the source's {digest}",
            hint="something else pushed that tag meanwhile; copy again, or copy to another tag",
        )
    return CopyResult(
        source=src,
        destination=dst,
        tag=tag,
        media_type=root.media_type,
        manifests=len(image_tree) - 1,
        image=image,
        attestations=attestations,
        signatures=signatures,
        bundles=bundles,
        other_referrers=others,
        fallback_index=next((s for s in (WRITTEN, UP_TO_DATE, NOT_NEEDED) if s in states), None),
        skipped_referrers=sum(found.skipped for found in evidence),
    )
