"""``scripts/sigstore-binaries`` builds where :func:`find_sigstore_binaries` looks.

The timestamp authority and Fulcio are built patched, under their version plus a mark
(``-metrics-addr``, ``-metrics-host``), in both the script's ``--print-bin-dirs`` and the Python
lookup; a binary built before the patch is not found.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from affidavit.envtest import BinariesMissingError
from affidavit.envtest.binaries import pinned_versions
from affidavit.envtest.sigstore import find_sigstore_binaries
from binary_builds import REPO


def test_script_builds_where_find_sigstore_binaries_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFFIDAVIT_CACHE_DIR", str(tmp_path))
    dirs = subprocess.run(
        ["bash", str(REPO / "scripts" / "sigstore-binaries"), "--print-bin-dirs"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    with pytest.raises(BinariesMissingError):
        find_sigstore_binaries()
    made = []
    for directory in map(Path, dirs):
        binary = directory / directory.parent.name.split("-v")[0]
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
        made.append(binary)
    assert sorted(find_sigstore_binaries().values()) == sorted(made)
    pins = pinned_versions()
    tsa = f"timestamp-server-{pins['TSA_VERSION']}-metrics-addr"
    assert [p.parent.parent.name for p in made if p.name == "timestamp-server"] == [tsa]
    fulcio = f"fulcio-{pins['FULCIO_VERSION']}-metrics-host"
    assert [p.parent.parent.name for p in made if p.name == "fulcio"] == [fulcio]
