"""Benchmark: the webhook's memory with many distinct digests in its evidence cache.

Why: the webhook keeps the verified evidence of every digest it has judged (``EvidenceCache``,
``--cache-entries``, bounded LRU) so that a warm review never touches the registry. Each entry
holds the parsed predicates of its attestations; with real provenance (tens of KB of JSON per
image) the cache, not the code, decides the Pod's memory. This fills a cache with N distinct
digests, each verified from a signed real-size ai-provenance statement exactly as the webhook
verifies it (``verify_fetched``), and prints the process's resident set before and after, and
per entry. The baseline is the same process before the cache is filled. With ``--cache-mib M``
the cache has the webhook's byte budget (``--evidence-cache-mib``, the chart's
``webhook.evidenceCacheMiB``): the resident set then stops growing at about 5 x M however many
digests are judged. Run:
``.venv/bin/python benchmarks/bench_memory.py [--digests N] [--predicate-bytes B] [--cache-mib M]``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import tempfile
from pathlib import Path

from bench_verify import PREDICATE_TYPE, provenance_of_size

from affidavit.attestations.dsse import DSSE_MEDIA_TYPE, sign_envelope
from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.registry import ImageReference, sha256_digest
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import FetchedAttestation
from affidavit.attestations.verify import verify_fetched


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--digests", type=int, default=10_000)
    parser.add_argument("--predicate-bytes", type=int, default=19_000)
    parser.add_argument("--cache-mib", type=int, default=None, help="the cache's byte budget")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as d:
        private_pem, public_pem = generate_key_pair("ecdsa-p256")
        Path(d, "k.key").write_bytes(private_pem)
        signer = load_signer(Path(d, "k.key"))
    trusted = [KeySigner(name="bench.pub", public_key_pem=public_pem.decode())]
    budget = args.cache_mib * 1024 * 1024 if args.cache_mib else None
    cache = EvidenceCache(max_entries=args.digests, max_bytes=budget)
    gc.collect()
    before = rss_mib()
    for i in range(args.digests):
        digest = "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
        image = ImageReference.parse(f"registry.example/shop/app{i % 50}@{digest}")
        statement = make_statement(
            image.name, digest, PREDICATE_TYPE, provenance_of_size(i, args.predicate_bytes)
        )
        raw = sign_envelope(statement, signer).to_json()
        item = FetchedAttestation("cosign-tag", DSSE_MEDIA_TYPE, sha256_digest(raw), None, raw)
        evidence = verify_fetched([item], image, trusted)
        assert evidence.verified, evidence.rejected
        cache.put(cache.key(digest, trusted, None, image.name), evidence)
    gc.collect()
    after = rss_mib()
    n = len(cache)
    print(
        f"{args.digests} distinct digests judged, {n} cached ({cache.bytes / 2**20:.1f} MiB of "
        f"predicate JSON, budget {args.cache_mib or 'none'}), predicates of "
        f"~{args.predicate_bytes} bytes"
    )
    print(f"RSS before filling the cache (baseline): {before:8.1f} MiB")
    print(f"RSS with the cache full:                 {after:8.1f} MiB")
    print(f"per cached digest:                       {(after - before) * 1024 / n:8.1f} KiB")
    print(
        f"resident per MiB of predicate JSON:      {(after - before) / (cache.bytes / 2**20):8.1f} MiB"
    )


if __name__ == "__main__":
    main()
