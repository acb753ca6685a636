"""`operator/build-image --push REF --sign-key KEY` (what `make image REGISTRY=...` runs) pushes
the image to a real registry under the digest it built, and signs Affidavit's own provenance
attestation (this repository's history) against that digest: `affidavit verify` finds it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from affidavit.demo.services import LocalRegistry
from image_builds import Layout, run_build

PROVENANCE = "https://affidavit.dev/attestations/ai-provenance/v1"

pytestmark = pytest.mark.timeout(2400)  # the first session builds the image (minutes)


def test_pushed_image_carries_its_own_signed_provenance(
    image_layout: Layout, registry: LocalRegistry, tmp_path: Path
) -> None:
    cli = [sys.executable, "-m", "affidavit.cli.main"]
    subprocess.run(
        [*cli, "keygen", "--output", str(tmp_path / "release")], check=True,
        capture_output=True,
    )  # fmt: skip
    ref = f"{registry.host}/affidavit/affidavit:test"
    digest = run_build("--push", ref, "--sign-key", str(tmp_path / "release.key"))
    assert digest == image_layout.digest

    verify = subprocess.run(
        [*cli, "verify", f"{registry.host}/affidavit/affidavit@{digest}",
         "--key", str(tmp_path / "release.pub"), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    evidence = json.loads(verify.stdout)
    assert evidence["digest"] == digest
    (verified,) = evidence["verified"]
    assert verified["predicateType"] == PROVENANCE
    assert verified["subject"] == f"{registry.host}/affidavit/affidavit@{digest}"
    assert evidence["rejected"] == []
