"""CLI: ``affidavit copy SRC DST``, an image promoted to another registry with its evidence.

Mirroring an image into a registry inside a region (data residency) or into an air-gapped one
with a plain image copy leaves the attestations behind, and the clusters there then deny it.
This command copies the image and everything ``affidavit attest`` and cosign store beside it,
byte for byte (``attestations/copy.py``), so the webhook at the destination admits the copy on
the same evidence; it prints what moved and what was already there, so a re-run that copies
nothing says so. Like ``verify``, it imports the registry code only when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from affidavit.cli.options import CaBundleOpt, InsecureRegistryOpt, RegistryConfigOpt

if TYPE_CHECKING:
    from affidavit.attestations.copy import CopyResult, Part, Tally

MIB = 1024 * 1024
#: A request's timeout during a copy. A blob goes out in one socket write, which the timeout
#: bounds as a whole (not per chunk): verify's 10 s would cut off a large layer on a slow link.
COPY_TIMEOUT_SECONDS = 300.0


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _moved(tally: Tally) -> str:
    mounted = f", {tally.blobs_mounted} mounted" if tally.blobs_mounted else ""
    return (
        f"{_count(tally.blobs_copied, 'blob')} copied{mounted}, {tally.blobs_present} already there"
    )


def _part(label: str, part: Part, unit: str, extra: str = "") -> str:
    if not part.count:
        return f"{label}: none"
    return f"{label}: {_count(part.count, unit)}, {_moved(part.tally)}{extra}"


def render(result: CopyResult) -> list[str]:
    """The lines ``affidavit copy`` prints about ``result``."""
    digest = result.destination.digest
    where = f"tag {result.tag}" if result.tag else "no tag: by digest only"
    index = f"index of {_count(result.manifests, 'manifest')}, " if result.manifests else ""
    lines = [
        f"copied {result.source.name}@{digest} to {result.destination.name}@{digest} ({where})",
        f"image: {index}{_moved(result.image)}",
        _part("cosign attestations (.att)", result.attestations, "envelope"),
        _part("cosign signatures (.sig)", result.signatures, "signature"),
        _part(
            "Sigstore bundles",
            result.bundles,
            "bundle",
            f" (fallback index {result.fallback_index})" if result.fallback_index else "",
        ),
    ]
    if result.other_referrers.count:
        lines.append(_part("other referrers", result.other_referrers, "artifact"))
    if result.skipped_referrers:
        lines.append(
            f"skipped: {result.skipped_referrers} listed referrer(s) missing at the source or "
            "about another image"
        )
    if not result.moved:
        lines.append("nothing new: the destination already had all of it")
    return lines


def _tally(tally: Tally) -> dict[str, int]:
    return {
        "manifestsCopied": tally.manifests_copied,
        "manifestsAlreadyThere": tally.manifests_present,
        "blobsCopied": tally.blobs_copied,
        "blobsAlreadyThere": tally.blobs_present,
        "bytesCopied": tally.bytes_copied,
        "blobsMounted": tally.blobs_mounted,
    }


def as_json(result: CopyResult) -> dict[str, Any]:
    """The facts ``render`` prints, as one JSON object."""
    return {
        "source": f"{result.source.name}@{result.source.digest}",
        "destination": f"{result.destination.name}@{result.destination.digest}",
        "digest": result.destination.digest,
        "tag": result.tag,
        "mediaType": result.media_type,
        "manifests": result.manifests,
        "image": _tally(result.image),
        "attestations": {
            "envelopes": result.attestations.count,
            **_tally(result.attestations.tally),
        },
        "signatures": {"signatures": result.signatures.count, **_tally(result.signatures.tally)},
        "bundles": {
            "bundles": result.bundles.count,
            "fallbackIndex": result.fallback_index,
            **_tally(result.bundles.tally),
        },
        "otherReferrers": {
            "artifacts": result.other_referrers.count,
            **_tally(result.other_referrers.tally),
        },
        "skippedReferrers": result.skipped_referrers,
        "nothingNew": not result.moved,
    }


def copy(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SRC", help="REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST to copy."
        ),
    ],
    destination: Annotated[
        str,
        typer.Argument(
            metavar="DST",
            help="REGISTRY/REPO[:TAG] to copy to (default tag: SRC's; no digest: the copy "
            "keeps SRC's).",
        ),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a destination .att or .sig tag that holds layers SRC's lacks.",
        ),
    ] = False,
    max_blob_mib: Annotated[
        int,
        typer.Option(
            "--max-blob-mib",
            min=1,
            help="Largest blob copied, in MiB. Blobs stream from registry to registry; only "
            "one whose manifest gives no size is held in memory while it is copied.",
        ),
    ] = 16384,
    insecure_registry: InsecureRegistryOpt = None,
    registry_config: RegistryConfigOpt = None,
    ca_bundle: CaBundleOpt = None,
) -> None:
    """Copy an image and the evidence beside it (cosign .att and .sig tags, Sigstore bundle
    referrers) to another registry or repository, byte for byte: every digest, and so every
    attestation, still holds at the destination."""
    import json

    from affidavit.attestations.copy import copy_image
    from affidavit.attestations.reference import ImageReference
    from affidavit.cli.verify import client
    from affidavit.errors import UsageError

    src = ImageReference.parse(source)
    dst = ImageReference.parse(destination)
    if dst.digest is not None:
        raise UsageError(
            f"DST {destination} names a digest; the copy keeps the digest of SRC",
            hint="give DST as REGISTRY/REPO or REGISTRY/REPO:TAG",
        )
    with client(
        insecure_registry, registry_config, ca_bundle, timeout=COPY_TIMEOUT_SECONDS
    ) as registry:
        result = copy_image(registry, src, dst, max_blob_bytes=max_blob_mib * MIB, force=force)
    if json_output:
        typer.echo(json.dumps(as_json(result), indent=2))
        return
    for line in render(result):
        typer.echo(line)


def register(root: typer.Typer) -> None:
    """Add ``copy`` to the root app."""
    root.command("copy", short_help="Copy an image and its evidence to another registry.")(copy)
