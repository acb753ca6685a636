"""Benchmark: ``affidavit copy`` beside ``cosign copy``, registry to registry, whole processes.

Why: promoting an image into a regional or air-gapped registry (what evidence residency asks
for) is a copy of everything beside it. Operators already have ``cosign copy``; ours must not cost
much more, and it also copies what cosign's leaves behind (the Sigstore bundles found through the
referrers fallback index). Both run as the commands operators run, into a fresh repository of a
second real registry each round, interleaved so that both see the same load; then a second copy
onto what is there (nothing new to move); and each process's peak memory: both stream each blob
from the source's answer into the destination's upload (ours read blobs whole until it did,
178 MiB for this image).

Two real docker-registry processes on 127.0.0.1; the image has ``--layers`` layers of
``--layer-mib`` MiB of random bytes (incompressible, as layers are) and ``--attestations``
envelopes of a 19 KB predicate in both layouts. Run:
``.venv/bin/python benchmarks/bench_copy.py [--layers N] [--layer-mib M] [--attestations A]
[--rounds R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_verify import PREDICATE_TYPE, _cosign, provenance_of_size, registry

from affidavit.attestations.dsse import sign_envelope
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.registry import OCI_MANIFEST, ImageReference, RegistryClient
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import attach

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def push_image(client: RegistryClient, repo: ImageReference, layers: int, mib: int) -> str:
    """An image of ``layers`` random layers of ``mib`` MiB; returns its digest."""
    descriptors = []
    for _ in range(layers):
        data = os.urandom(mib * 1024 * 1024)
        digest = client.put_blob(repo, data)
        descriptors.append({"mediaType": LAYER_TYPE, "digest": digest, "size": len(data)})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
        }
    ).encode()
    config_digest = client.put_blob(repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config),
        },
        "layers": descriptors,
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    digest, _ = client.put_manifest(repo.with_tag("v1"), data, OCI_MANIFEST)
    return digest


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one run of ``argv``."""
    # the peak RSS of the children so far only ever grows: run each in a child of its own
    probe = (
        "import resource, subprocess, sys, time\n"
        "s = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "w = time.perf_counter() - s\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(w, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv], env=env, check=True, capture_output=True, text=True
    )
    wall, cpu, rss = (float(x) for x in out.stdout.split())
    return wall, cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--layer-mib", type=int, default=16)
    parser.add_argument("--attestations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cosign = _cosign()
    if cosign is None:
        print("cosign not found (make binaries): nothing to compare with")
        return
    print(f"load average {os.getloadavg()[0]:.2f} (figures under load: compare the ratios)")
    with tempfile.TemporaryDirectory() as work, registry() as home, registry() as mirror:
        signer_key = Path(work, "k.key")
        signer_key.write_bytes(generate_key_pair("ecdsa-p256")[0])
        signer = load_signer(signer_key)
        with RegistryClient() as client:
            repo = ImageReference.parse(f"{home}/bench/app")
            digest = push_image(client, repo, args.layers, args.layer_mib)
            image = repo.with_digest(digest)
            for i in range(args.attestations):
                statement = make_statement(
                    image.name, digest, PREDICATE_TYPE, provenance_of_size(i, 19_000)
                )
                envelope = sign_envelope(statement, signer)
                attach(client, image, PREDICATE_TYPE, envelope=envelope.to_json())
        size = args.layers * args.layer_mib
        print(
            f"image {image}: {args.layers} x {args.layer_mib} MiB layers, "
            f"{args.attestations} attestations in both layouts"
        )

        script = Path(sys.executable).parent / "affidavit"
        start = [str(script)] if script.exists() else [sys.executable, "-m", "affidavit.cli.entry"]
        ours_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        theirs_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work}
        source = f"{home}/bench/app:v1"

        def ours(dest: str) -> list[str]:
            return [*start, "copy", source, dest, "--insecure-registry", home,
                    "--insecure-registry", mirror]  # fmt: skip

        def theirs(dest: str) -> list[str]:
            return [str(cosign), "copy", "--allow-http-registry", source, dest]

        subprocess.run(ours(f"{mirror}/warm/app"), env=ours_env, check=True, capture_output=True)
        best: dict[str, tuple[float, float, float]] = {}
        for r in range(args.rounds):  # interleaved: a fresh destination repository each run
            for name, argv in (
                ("affidavit copy", ours(f"{mirror}/ours{r}/app")),
                ("cosign copy", theirs(f"{mirror}/cosign{r}/app")),
                ("affidavit copy, again", ours(f"{mirror}/ours{r}/app")),
                ("cosign copy, again", theirs(f"{mirror}/cosign{r}/app")),
            ):
                wall, cpu, rss = timed(argv, ours_env if name.startswith("aff") else theirs_env)
                was = best.get(name, (float("inf"), float("inf"), 0.0))
                best[name] = (min(was[0], wall), min(was[1], cpu), max(was[2], rss))
        print(f"\nbest of {args.rounds} (wall, CPU = user + system, peak RSS of the process):")
        for name, (wall, cpu, rss) in best.items():
            rate = f"{size / wall:7.1f} MiB/s" if "again" not in name else " " * 13
            print(f"  {name:<24} {wall * 1e3:9.1f} ms  {rate}  CPU {cpu * 1e3:8.1f} ms  "
                  f"RSS {rss:6.1f} MiB")  # fmt: skip
        ratio = best["affidavit copy"][0] / best["cosign copy"][0]
        again = best["affidavit copy, again"][0] / best["cosign copy, again"][0]
        print(f"\naffidavit/cosign wall: first copy {ratio:.2f}x, second copy {again:.2f}x")
        with RegistryClient(insecure_hosts={mirror}) as client:
            for name in ("ours0", "cosign0"):
                ref = ImageReference.parse(f"{mirror}/{name}/app").with_digest(digest)
                index = client.find_manifest(ref.with_tag(digest.replace(":", "-")))
                entries = len(index.json().get("manifests") or []) if index else 0
                print(f"{name[:-1]}'s copy: {entries} Sigstore bundles in the fallback index")


if __name__ == "__main__":
    main()
