"""cosign's own bundles on a registry with the OCI 1.1 referrers API, read by Affidavit.

cosign 2.6 (``attest --new-bundle-format``) pushes a Sigstore bundle whose ``subject`` is the
image and, where the registry answers the referrers API, writes no fallback tag: the API is
the only way to find it. go-containerregistry's registry (real, built from the module proxy)
lists it with its config's media type as ``artifactType``; ``affidavit verify`` must still
find and verify it (it found nothing before), as the webhook's fetch does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from cosign_support import Cosign

from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.cli.main import main
from affidavit.demo.services import ReferrersRegistry

TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"


def test_a_cosign_bundle_the_api_alone_lists_verifies(
    cosign: Cosign,
    cosign_keys: Path,
    referrers_registry: ReferrersRegistry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with RegistryClient() as client:
        repository = ImageReference.parse(f"{referrers_registry.host}/acme/cosigned")
        digest = push_sample_image(client, repository, {"app/main.py": b"print(2)\n"}, "v1")
        image = repository.with_digest(digest)
        predicate = tmp_path / "predicate.json"
        predicate.write_text(json.dumps({"commits": 7}))
        cosign.run("attest", "--key", f"{cosign_keys}.key", "--new-bundle-format",
                   "--tlog-upload=false", "--type", TYPE, "--predicate", str(predicate),
                   "--allow-http-registry", "--allow-insecure-registry", "-y", str(image))  # fmt: skip
        listed = client.referrers(image, digest)
        assert listed is not None and len(listed["manifests"]) == 1
    tags = httpx.get(f"http://{referrers_registry.host}/v2/acme/cosigned/tags/list").json()
    assert tags["tags"] == ["v1"]  # no fallback tag, no .att: the API is the only way to it
    code = main(["verify", str(image), "--key", f"{cosign_keys}.pub"])
    out = capsys.readouterr().out
    assert code == 0, out
    signer = re.escape(f"{cosign_keys}.pub")
    assert re.search(rf"verified +{re.escape(TYPE)} +signer {signer} +\(referrer sha256:", out)
    assert out.rstrip().endswith("1 verified, 0 rejected")
