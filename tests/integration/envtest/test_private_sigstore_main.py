"""``python -m affidavit.envtest.sigstore``: the private Sigstore an air-gapped site starts by hand.

It prints its URLs and the two files clients need, serves until SIGTERM, then stops every
process it started. The trusted root names the four services it printed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from binary_builds import sigstore_binaries_or_skip


def test_runs_until_sigterm_and_writes_a_trusted_root(tmp_path: Path) -> None:
    sigstore_binaries_or_skip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "affidavit.envtest.sigstore", str(tmp_path / "sigstore"),
         "--issuer", "https://127.0.0.1:1/=kubernetes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(5)]
        printed = dict(line.split(maxsplit=1) if not line.startswith(("trusted", "signing"))
                       else line.rsplit(maxsplit=1) for line in lines)  # fmt: skip
        assert list(printed) == ["fulcio", "rekor", "tsa", "trusted root", "signing config"]
        root = json.loads(Path(printed["trusted root"]).read_text())
        assert root["certificateAuthorities"][0]["uri"] == printed["fulcio"]
        assert [t["baseUrl"] for t in root["tlogs"]] == [printed["rekor"]]
        assert root["timestampAuthorities"][0]["uri"] == printed["tsa"]
        assert len(root["ctlogs"]) == 1
        config = json.loads(Path(printed["signing config"]).read_text())
        assert config["rekorTlogUrls"][0] == {
            "url": printed["rekor"],
            "majorApiVersion": 2,
            "validFor": config["rekorTlogUrls"][0]["validFor"],
            "operator": "affidavit-private-sigstore",
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
