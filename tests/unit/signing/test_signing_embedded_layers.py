"""A cosign layer's descriptor may embed the layer's bytes (``data``, base64): ``attach`` writes
them so that a first look at a digest needs no second round trip. Embedded bytes count only when
they are exactly what the descriptor's digest and size name, within the size limit; anything
else is ignored (the blob is read and digest-checked instead), never believed."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from affidavit.attestations.registry import sha256_digest
from affidavit.attestations.store import embedded

CONTENT = b'{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'


def _layer(**change: Any) -> dict[str, Any]:
    layer: dict[str, Any] = {
        "mediaType": "application/vnd.dsse.envelope.v1+json",
        "digest": sha256_digest(CONTENT),
        "size": len(CONTENT),
        "data": base64.b64encode(CONTENT).decode(),
    }
    layer.update(change)
    return {k: v for k, v in layer.items() if v is not None}


def test_the_bytes_the_digest_names_are_taken() -> None:
    assert embedded(_layer(), 4096) == CONTENT


@pytest.mark.parametrize(
    "layer",
    [
        _layer(data=None),  # nothing embedded (cosign writes none)
        _layer(data=base64.b64encode(b'{"other":1}').decode()),  # other bytes, same digest
        _layer(digest=sha256_digest(b"other")),  # the digest names other content
        _layer(size=len(CONTENT) - 1),  # the size is not the content's
        _layer(data=base64.b64encode(CONTENT).decode().rstrip("=") + "!="),  # not base64
        _layer(data=" " + base64.b64encode(CONTENT).decode()[1:]),  # not strictly base64
        _layer(data=base64.b64encode(CONTENT).decode() + "AAAA"),  # longer than its size
        _layer(data=123),
        _layer(size="83"),
        _layer(digest=None),
    ],
    ids=[
        "none",
        "other-bytes",
        "other-digest",
        "wrong-size",
        "not-base64",
        "loose-base64",
        "too-long",
        "data-not-text",
        "size-not-int",
        "no-digest",
    ],
)
def test_anything_else_is_ignored(layer: dict[str, Any]) -> None:
    assert embedded(layer, 4096) is None


def test_over_the_size_limit_it_is_ignored_and_the_blobs_limit_applies() -> None:
    assert embedded(_layer(), len(CONTENT) - 1) is None
