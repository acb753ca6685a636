"""Blobs stream from the source registry into the destination's upload, checked as they pass.

Real: two docker-registry processes and the real CLI. A copy used to read each blob whole
before pushing it (peak memory about twice the largest blob), so an image with a layer of a few
GiB, as model-serving images have, needed that much memory or a raised --max-blob-mib. Now a copy
holds a read's worth of each blob. What the source sends is counted and hashed on the way: a
registry that serves other bytes for a digest, or fewer bytes than the manifest says, ends the
upload unfinished, the destination stores nothing of it, and the error names the source. A
source whose length is wrong is caught before a byte is sent, and the upload session cancelled;
other bytes of the right length are caught at the last read, withheld, so the session (which
distribution then refuses to cancel, its offset having moved) holds less than the blob and is
left to the registry's purge of stale uploads. The bad content is made the way it happens, on the source
registry's own storage (a corrupted or truncated blob file), not by a stand-in server.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from affidavit.attestations.registry import OCI_MANIFEST, ImageReference, RegistryClient
from affidavit.attestations.registry_wire import Streamed
from affidavit.cli.main import main
from hostile_registries import hostile_registry, redirect_to

MIB = 1024 * 1024
#: The layer of the memory test: well above what a copy of a small image takes (about 70 MiB).
BIG_LAYER = 192 * MIB
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
#: Runs a command and prints the peak resident memory of its process tree, in KiB.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def _image(
    client: RegistryClient, host: str, repository: str, layer: bytes, size: int | None = None
) -> ImageReference:
    """An image of one uncompressed layer ``layer`` in ``host/repository`` (tag v1), its
    descriptor giving ``size`` (default: the layer's)."""
    ref = ImageReference.parse(f"{host}/{repository}")
    config, blob = client.put_blob(ref, CONFIG), client.put_blob(ref, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config,
            "size": len(CONFIG),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": blob,
                "size": len(layer) if size is None else size,
            }
        ],
    }
    digest, _ = client.put_manifest(ref.with_tag("v1"), json.dumps(manifest).encode(), OCI_MANIFEST)
    return ref.with_digest(digest)


def _blob_file(registry: Any, digest: str) -> Path:
    """Where docker-registry keeps a blob's bytes on its filesystem storage."""
    hexdigest = digest.removeprefix("sha256:")
    return Path(
        registry.root, "data/docker/registry/v2/blobs/sha256", hexdigest[:2], hexdigest, "data"
    )


def _open_uploads(registry: Any, repository: str) -> list[int]:
    """The bytes each upload session the registry still holds open for ``repository`` has
    taken (a cancelled one keeps only its empty hash-state directory)."""
    uploads = Path(registry.root, "data/docker/registry/v2/repositories", repository, "_uploads")
    if not uploads.is_dir():
        return []
    return sorted(
        (p / "data").stat().st_size if (p / "data").exists() else 0
        for p in uploads.iterdir()
        if (p / "startedat").exists()
    )


def _copy(capsys: pytest.CaptureFixture[str], source: str, destination: str) -> tuple[int, str]:
    code = main(["copy", source, destination])
    return code, capsys.readouterr().err


def test_a_layer_larger_than_the_copys_memory_streams_through(
    registry: Any, mirror_registry: Any, tmp_path: Path
) -> None:
    layer = os.urandom(BIG_LAYER)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    with RegistryClient() as client:
        image = _image(client, registry.host, "stream/big", layer)
        del layer
        destination = f"{mirror_registry.host}/stream/big"
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "affidavit.cli", "copy",
             str(image), destination],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        peak = int(done.stdout.split()[-1]) * 1024
        # Held whole, the layer alone would be 192 MiB (and its joined copy as much again).
        assert peak < BIG_LAYER, f"peak RSS {peak / MIB:.0f} MiB"
        copied = ImageReference.parse(destination).with_digest(str(image.digest))
        assert client.get_manifest(copied).digest == image.digest
        assert client.has_blob(copied, layer_digest)
    # the destination checked it too: what it stored hashes to the digest
    stored = _blob_file(mirror_registry, layer_digest).read_bytes()
    assert "sha256:" + hashlib.sha256(stored).hexdigest() == layer_digest
    assert _open_uploads(mirror_registry, "stream/big") == []


@pytest.mark.parametrize("damage", ["other bytes", "fewer bytes", "no bytes"])
def test_a_source_serving_a_damaged_blob_leaves_nothing_at_the_destination(
    registry: Any, mirror_registry: Any, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """ "no bytes": a manifest that says the layer is empty, and a registry that serves it
    empty, for a digest of other content (no read to check it at, so it is checked after)."""
    layer = os.urandom(3 * MIB)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    repository = f"stream/damaged-{damage.split()[0]}"
    served = {"other bytes": bytes(reversed(layer)), "fewer bytes": layer[: 2 * MIB]}
    with RegistryClient() as client:
        image = _image(
            client, registry.host, repository, layer, 0 if damage == "no bytes" else None
        )
        # what a failing disk or a tampering operator leaves in the source's storage
        _blob_file(registry, layer_digest).write_bytes(served.get(damage, b""))
        code, err = _copy(capsys, str(image), f"{mirror_registry.host}/{repository}")
        assert code == 5, err
        if damage == "fewer bytes":
            assert err.startswith(
                f"error: blob {layer_digest} in {registry.host}/{repository} is {2 * MIB} bytes; "
                f"the manifest that lists it says {3 * MIB}"
            ), err
        else:
            actual = "sha256:" + hashlib.sha256(served.get(damage, b"")).hexdigest()
            assert err.startswith(
                f"error: blob {layer_digest} from {registry.host}/{repository} has digest "
                f"{actual}; the registry returned other content than asked for"
            ), err
        mirror = ImageReference.parse(f"{mirror_registry.host}/{repository}")
        assert not client.has_blob(mirror, layer_digest)
        assert client.find_manifest(mirror.with_digest(str(image.digest))) is None
    sessions = _open_uploads(mirror_registry, repository)
    if damage == "other bytes":  # all but the last read, which was withheld
        assert len(sessions) == 1 and 0 < sessions[0] < 3 * MIB, sessions
    else:
        assert sessions == []  # cancelled: not a byte had been sent


def test_a_blob_the_source_sends_from_its_storage_by_redirect_streams_through(
    registry: Any, mirror_registry: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Docker Hub, ECR and GCR answer a blob's GET with a redirect to their storage: the
    streamed GET follows it as the other requests do (here the "storage" is the real registry,
    behind a front that redirects every request to it)."""
    layer = os.urandom(2 * MIB)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    with RegistryClient() as client, hostile_registry(redirect_to(registry.url)) as front:
        image = _image(client, registry.host, "stream/redirected", layer)
        source = f"{front.host}/stream/redirected@{image.digest}"
        code, err = _copy(capsys, source, f"{mirror_registry.host}/stream/redirected")
        assert code == 0, err
        assert ("GET", f"/v2/stream/redirected/blobs/{layer_digest}") in {
            (s.method, s.path) for s in front.seen
        }
        mirror = ImageReference.parse(f"{mirror_registry.host}/stream/redirected")
        assert client.has_blob(mirror, layer_digest)


def test_a_destination_refusing_an_upload_before_its_body_is_heard(mirror_registry: Any) -> None:
    """docker-registry refuses a PUT to an upload session it does not know as soon as it has the
    head, and hangs up while the body still streams: the refusal is read and named (HTTP 404,
    BLOB_UPLOAD_INVALID), not taken for an unreachable destination."""
    ref = ImageReference.parse(f"{mirror_registry.host}/stream/refused")
    url = f"http://{mirror_registry.host}/v2/stream/refused/blobs/uploads/0?_state=x&digest=sha256:{'0' * 64}"
    body = Streamed(iter([b"x" * MIB] * 64), 64 * MIB)
    with RegistryClient() as client:
        answer = client._request("PUT", ref, url, content=body, push=True)
    assert answer.status == 404
    assert b"BLOB_UPLOAD_INVALID" in answer.body
