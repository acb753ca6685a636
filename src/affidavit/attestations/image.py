"""Push a tiny, real OCI image made in Python, so the demo and tests need no image builder.

Attestations are bound to an image digest, so every end-to-end run needs an image in a registry.
There is no Docker on the machines we run on; this module makes a genuine OCI image (a config
and one gzip'd tar layer holding the given files), deterministically, so the same files always
give the same digest, and pushes it with the registry client.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping

from affidavit.attestations.registry import (
    OCI_MANIFEST,
    ImageReference,
    RegistryClient,
)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def _layer(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """(gzip'd tar, diff_id) for ``files``; fixed mtimes and owners make it reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    return gzip.compress(tar_bytes, mtime=0), diff_id


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def push_sample_image(
    client: RegistryClient,
    repository_ref: ImageReference | str,
    files: Mapping[str, bytes],
    tag: str = "latest",
) -> str:
    """Push an image holding ``files`` to ``repository_ref`` under ``tag``; returns its digest."""
    ref = (
        ImageReference.parse(repository_ref) if isinstance(repository_ref, str) else repository_ref
    )
    layer, diff_id = _layer(files)
    config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"dev.affidavit.sample": "true"}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "affidavit push_sample_image"}],
        }
    )
    layer_digest = client.put_blob(ref, layer)
    config_digest = client.put_blob(ref, config)
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": len(layer)}],
        }
    )
    digest, _ = client.put_manifest(ref.with_tag(tag), manifest, OCI_MANIFEST)
    return digest
