"""Benchmark: the webhook's memory with many distinct digests in its evidence cache.

Why: the webhook keeps the verified evidence of every digest it has judged (``EvidenceCache``,
``--cache-entries``, bounded LRU) so that a warm review never touches the registry. Each entry
holds the predicates of its attestations; with real provenance (tens of KB of JSON per image)
the cache, not the code, decides the Pod's memory. This fills a cache with N distinct digests,
each verified from a signed real-size ai-provenance statement exactly as the webhook verifies
it (``verify_fetched``) and read by the policy engine's model as an admission does
(``parsed(AiProvenance)``), and prints the process's resident set before and after, and per
entry. The predicates are real: ``collect provenance`` over the benchmark repository of
``bench_collect`` (its paths, authors, trailers and tiers), a different window of commits for
each digest, with each commit id made distinct per digest, as successive releases are.
The baseline is the same process before the cache is filled. The cache keeps every predicate
packed and the most recently used ``--hot-mib`` of predicate JSON parsed (the webhook's
default: 2). ``--cache-mib M`` gives the cache the webhook's byte budget of packed predicates
(``--evidence-cache-mib``, the chart's ``webhook.evidenceCacheMiB``). Run:
``.venv/bin/python benchmarks/bench_memory.py [--digests N] [--predicate-bytes B] [--cache-mib M]``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import tempfile
from pathlib import Path

import orjson
from bench_collect import repository
from bench_verify import PREDICATE_TYPE

from affidavit.attestations.dsse import DSSE_MEDIA_TYPE, sign_envelope
from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.evidence_cache import HOT_BYTES, EvidenceCache
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.predicates.provenance import AiProvenance
from affidavit.attestations.registry import ImageReference, sha256_digest
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import FetchedAttestation
from affidavit.attestations.verify import verify_fetched
from affidavit.collect import collect_provenance


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def real_changes() -> tuple[dict[str, object], list[dict[str, object]]]:
    """A real provenance predicate of 2,000 commits (its changes apart) from the benchmark
    repository, collected once."""
    repo = repository(5_000)
    predicate = collect_provenance(repo, "main~2000", "main")
    body = orjson.loads(predicate.model_dump_json(by_alias=True, exclude_none=True))
    changes = body.pop("changes")
    return body, changes


def provenance(i: int, size: int, body: dict[str, object], changes: list[dict[str, object]]
               ) -> dict[str, object]:  # fmt: skip
    """About ``size`` bytes: a window of the real changes, each commit id distinct per ``i``."""
    out: list[dict[str, object]] = []
    used = len(orjson.dumps(body))
    k = (i * 7) % len(changes)
    while used < size:
        change = dict(changes[k % len(changes)])
        change["commit"] = hashlib.sha1(f"{i}/{change['commit']}".encode()).hexdigest()
        out.append(change)
        used += len(orjson.dumps(change))
        k += 1
    return {**body, "changes": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--digests", type=int, default=10_000)
    parser.add_argument("--predicate-bytes", type=int, default=19_000)
    parser.add_argument("--cache-mib", type=int, default=None, help="the cache's byte budget")
    parser.add_argument(
        "--hot-mib", type=float, default=HOT_BYTES / 2**20, help="predicate JSON kept parsed"
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as d:
        private_pem, public_pem = generate_key_pair("ecdsa-p256")
        Path(d, "k.key").write_bytes(private_pem)
        signer = load_signer(Path(d, "k.key"))
    trusted = [KeySigner(name="bench.pub", public_key_pem=public_pem.decode())]
    budget = args.cache_mib * 1024 * 1024 if args.cache_mib else None
    cache = EvidenceCache(
        max_entries=args.digests, max_bytes=budget, hot_bytes=int(args.hot_mib * 2**20)
    )
    body, changes = real_changes()
    gc.collect()
    before = rss_mib()
    for i in range(args.digests):
        digest = "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
        image = ImageReference.parse(f"registry.example/shop/app{i % 50}@{digest}")
        statement = make_statement(
            image.name, digest, PREDICATE_TYPE, provenance(i, args.predicate_bytes, body, changes)
        )
        raw = sign_envelope(statement, signer).to_json()
        item = FetchedAttestation("cosign-tag", DSSE_MEDIA_TYPE, sha256_digest(raw), None, raw)
        evidence = verify_fetched([item], image, trusted)
        assert evidence.verified, evidence.rejected
        cache.put(cache.key(digest, trusted, None, image.name), evidence)
        evidence.verified[0].parsed(AiProvenance)  # as the policy engine reads it
    gc.collect()
    after = rss_mib()
    n = len(cache)
    print(
        f"{args.digests} distinct digests judged, {n} cached ({cache.bytes / 2**20:.1f} MiB "
        f"packed, budget {args.cache_mib or 'none'}; {cache.hot / 2**20:.1f} MiB of JSON kept "
        f"parsed), predicates of ~{args.predicate_bytes} bytes"
    )
    print(f"RSS before filling the cache (baseline): {before:8.1f} MiB")
    print(f"RSS with the cache full:                 {after:8.1f} MiB")
    print(f"per cached digest:                       {(after - before) * 1024 / n:8.1f} KiB")
    print(
        f"resident per MiB of packed predicates:   {(after - before) / (cache.bytes / 2**20):8.1f} MiB"
    )


if __name__ == "__main__":
    main()
