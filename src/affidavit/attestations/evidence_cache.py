"""The admission webhook's memory of verified digests, bounded by entries and by bytes.

A warm review never touches the registry: ``EvidenceCache`` keeps each digest's verification
result (the verified statements' predicates, the rejection reasons; never envelopes) for a
bounded time. What bounds the webhook's memory is not the number of entries but their size: a
real provenance predicate is tens of KB of JSON and about five times that as Python objects.
So the cache keeps every predicate packed (its JSON, compressed: a 19 KB provenance packs to
about 4 KB) and only the most recently used ``hot_bytes`` of predicate JSON parsed as well;
a colder entry's predicate is parsed again from its packed JSON when a review reads it (a
fraction of a millisecond, against a registry round trip for a miss). ``max_bytes`` bounds the
packed bytes (``evidence_bytes``), evicting the least recently used digests first. The chart
sets that budget from the webhook's memory limit (charts/affidavit/values.yaml,
``webhook.evidenceCacheMiB``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

from affidavit.attestations.evidence import ImageEvidence, TrustedSigner
from affidavit.attestations.fetch import digest_and_subject
from affidavit.attestations.registry import DEFAULT_MAX_BYTES, ImageReference, RegistryClient
from affidavit.attestations.verify import verify_digest

#: What an entry costs besides its predicates (keys, strings, the evidence objects), in bytes.
ENTRY_OVERHEAD_BYTES = 1024
#: The predicate JSON kept parsed besides packed (the most recently used entries'): parsed and
#: validated by the policy's models, it costs about 13 times this in memory (bench_memory),
#: and 2 MiB is about a hundred images of real-size provenance.
HOT_BYTES = 2 * 1024 * 1024


def _sizes(evidence: ImageEvidence) -> tuple[int, int]:
    """(``evidence_bytes``, the predicate JSON the entry holds parsed while hot)."""
    size, parsed = ENTRY_OVERHEAD_BYTES, 0
    for a in evidence.verified:
        packed, raw = a.pack()
        size += packed + len(a.predicate_type) + len(a.signer)
        parsed += raw
    for r in evidence.rejected:
        size += len(r.reason) + len(r.predicate_type or "")
    return size, parsed


def evidence_bytes(evidence: ImageEvidence) -> int:
    """The bytes a cache entry is counted as: its packed predicates, reasons, and overhead
    (packs each verified attestation's predicate, see ``Attestation.pack``)."""
    return _sizes(evidence)[0]


def signers_digest(signers: Sequence[TrustedSigner], predicate_types: Sequence[str] | None) -> str:
    """A stable digest of a trust configuration (what a cache entry was verified against).

    Asked on every review (each image's cache key): remembered for the last few configurations,
    which are few (one per policy's signers) and, being frozen, hash by their fields."""
    return _signers_digest(tuple(signers), tuple(predicate_types or ()))


@lru_cache(maxsize=256)
def _signers_digest(signers: tuple[TrustedSigner, ...], predicate_types: tuple[str, ...]) -> str:
    parts = sorted(json.dumps([type(s).__name__, *vars(s).values()]) for s in signers)
    data = json.dumps([parts, sorted(predicate_types)]).encode()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Entry:
    evidence: ImageEvidence
    expires: float
    size: int  # evidence_bytes(evidence)
    parsed: int  # its predicates' JSON bytes, held parsed while the entry is hot
    #: Who has shown the registry lets them read the image (``lookup``'s ``access``): None, no
    #: one is asked (a CLI's own cache).
    readers: set[str] | None = None


CacheResult = Literal["hit", "miss", "negative_hit"]


@dataclass(frozen=True)
class CacheLookup:
    """What ``EvidenceCache.lookup`` found for an image: its digest, evidence, and the source."""

    digest: str
    evidence: ImageEvidence
    result: CacheResult


class EvidenceCache:
    """Bounded LRU of verification results keyed by repository, digest and trust configuration.

    A negative result (nothing verified) expires after ``negative_ttl`` seconds so that evidence
    attached after a rejected deploy is picked up. A positive one expires too, after
    ``positive_ttl`` seconds (5 minutes by default): the image digest is immutable, but the set
    of attestations beside it is not (a newer review saying "changes requested" is attached
    later), and the newest one must count within a bounded time. Registry errors are never
    cached. At most ``max_entries`` digests and ``max_bytes`` (``evidence_bytes``, packed) are
    kept, the least recently used going first; one result larger than ``max_bytes`` is not
    kept. The most recently used entries, up to ``hot_bytes`` of predicate JSON, also keep
    their predicates parsed; the others are compacted (``Attestation.compact``). Thread-safe.
    """

    def __init__(
        self,
        *,
        max_entries: int = 1024,
        max_bytes: int | None = None,
        hot_bytes: int = HOT_BYTES,
        negative_ttl: float = 30.0,
        positive_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < positive_ttl < float("inf"):
            raise ValueError(f"positive_ttl must be a positive number of seconds: {positive_ttl}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0  # evidence_bytes of the entries kept
        self.hot_bytes = hot_bytes
        self.hot = 0  # the parsed predicate JSON of the hot entries
        self._hot: OrderedDict[str, int] = OrderedDict()  # key -> its parsed bytes
        self.negative_ttl = negative_ttl
        self.positive_ttl = positive_ttl
        self.hits = 0
        self.misses = 0
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        #: The entries with nothing verified, oldest first: at most a quarter of the entries,
        #: so a flood of unattested images (anyone who may push to a covered registry) pushes
        #: out its own, never the verified evidence other workloads' reviews are judged from.
        self._negative: OrderedDict[str, None] = OrderedDict()
        self.max_negative = max(1, max_entries // 4)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(
        digest: str,
        signers: Sequence[TrustedSigner],
        predicate_types: Sequence[str] | None = None,
        repository: str = "",
    ) -> str:
        """The cache key: the repository too, because what is stored beside one digest differs
        between repositories (the same image pushed twice carries each one's attestations)."""
        return f"{repository}@{digest}|{signers_digest(signers, predicate_types)}"

    def get(self, key: str, *, count_miss: bool = True) -> ImageEvidence | None:
        """The fresh entry for ``key``; ``count_miss=False``: a peek whose miss is looked up
        (and counted) next."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires <= self._clock():
                self._drop(key)
                entry = None
            if entry is None:
                if count_miss:
                    self.misses += 1
                return None
            self._entries.move_to_end(key)
            self._heat(key, entry)
            self.hits += 1
            return entry.evidence

    def put(self, key: str, evidence: ImageEvidence, *, access: str | None = None) -> None:
        """Keep ``evidence`` under ``key``; ``access``: who read it (``lookup``)."""
        ttl = self.positive_ttl if evidence.verified else self.negative_ttl
        size, parsed = _sizes(evidence)
        readers = None if access is None else {access}
        with self._lock:
            self._drop(key)
            if self.max_bytes is not None and size > self.max_bytes:
                return  # alone over the budget: verified again on each request instead
            entry = _Entry(evidence, self._clock() + ttl, size, parsed, readers)
            self._entries[key] = entry
            self.bytes += size
            self._heat(key, entry)
            if not evidence.verified:
                self._negative[key] = None
                while len(self._negative) > self.max_negative:
                    self._drop(next(iter(self._negative)))
            while len(self._entries) > self.max_entries or (
                self.max_bytes is not None and self.bytes > self.max_bytes
            ):
                self._drop(next(iter(self._entries)))

    def read_by(self, key: str, access: str) -> bool:
        """Whether ``access`` has shown it may read the image of ``key``'s entry (or no one is
        asked); False without an entry."""
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and (entry.readers is None or access in entry.readers)

    def _admit_reader(self, key: str, access: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.readers is not None:
                entry.readers.add(access)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._negative.clear()
            self._hot.clear()
            self.bytes = self.hot = 0

    def _drop(self, key: str) -> None:
        """Forget ``key`` (the lock is held)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
        self._negative.pop(key, None)
        self.hot -= self._hot.pop(key, 0)

    def _heat(self, key: str, entry: _Entry) -> None:
        """``key`` was just used: it keeps its predicates parsed, and the least recently used
        hot entries past ``hot_bytes`` are compacted (the lock is held)."""
        if key in self._hot:
            self._hot.move_to_end(key)
        else:
            self._hot[key] = entry.parsed
            self.hot += entry.parsed
        while self.hot > self.hot_bytes and len(self._hot) > 1:
            cold, parsed = self._hot.popitem(last=False)
            self.hot -= parsed
            kept = self._entries.get(cold)
            if kept is not None:
                for a in kept.evidence.verified:
                    a.compact()

    def lookup(
        self,
        client: RegistryClient,
        image: str,
        signers: Sequence[TrustedSigner],
        *,
        predicate_types: Sequence[str] | None = None,
        max_layer_bytes: int = DEFAULT_MAX_BYTES,
        sigstore_trusted_root: Path | None = None,
        access: str | None = None,
    ) -> CacheLookup:
        """``verify_image`` through the cache, saying whether the answer came from it.

        A tag is resolved on every call; a digest is not, but a cache miss on a digest checks
        that the image exists (its HEAD goes out with the attestation listings, not before
        them), so a missing image is a ``RegistryError``, never "no attestations". Registry
        errors propagate and are never cached.

        ``access`` names whose credentials ``client`` holds for the image's registry (the
        admission webhook's: a fingerprint, "" for none). An entry answers only those who have
        shown the registry lets them read the image: a digest is not resolved, so the evidence
        one workload's pull secret fetched answered another's request for the same digest with
        no secret, or another's (a denial then showed another team's reviewers and files). A
        caller not yet shown sends one HEAD of the manifest with its own credentials first.
        """
        ref = ImageReference.parse(image)
        digest, subject = digest_and_subject(client, ref)
        key = self.key(digest, signers, predicate_types, ref.name)
        cached = self.get(key)
        if cached is not None:
            if access is not None and not self.read_by(key, access):
                if ref.digest is not None:  # a tag was resolved just now, with these
                    client.head_manifest(ref)  # RegistryAccessError: not this caller's to read
                self._admit_reader(key, access)
            found = cached if cached.image == image else replace(cached, image=image)
            return CacheLookup(digest, found, "hit" if cached.verified else "negative_hit")
        evidence = verify_digest(
            client,
            ref.with_digest(digest),
            signers,
            image=image,
            predicate_types=predicate_types,
            max_layer_bytes=max_layer_bytes,
            sigstore_trusted_root=sigstore_trusted_root,
            subject=subject,
            check_image=subject is None,
        )
        self.put(key, evidence, access=access)
        return CacheLookup(digest, evidence, "miss")

    def verify(
        self,
        client: RegistryClient,
        image: str,
        signers: Sequence[TrustedSigner],
        *,
        predicate_types: Sequence[str] | None = None,
        max_layer_bytes: int = DEFAULT_MAX_BYTES,
        sigstore_trusted_root: Path | None = None,
    ) -> ImageEvidence:
        """``verify_image`` through the cache."""
        return self.lookup(
            client,
            image,
            signers,
            predicate_types=predicate_types,
            max_layer_bytes=max_layer_bytes,
            sigstore_trusted_root=sigstore_trusted_root,
        ).evidence
