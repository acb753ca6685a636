"""The real cosign binary for the interop tests: where it is, and how to run it hermetically."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "interop-password"


def cosign_path() -> Path | None:
    override = os.environ.get("AFFIDAVIT_COSIGN")
    if override:
        return Path(override)
    pins = dict(
        line.split("=", 1)
        for line in (ROOT / "scripts" / "versions.env").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    version = pins.get("COSIGN_VERSION", "").strip()
    cache = Path(os.environ.get("AFFIDAVIT_CACHE_DIR", Path.home() / ".cache" / "affidavit"))
    built = cache / "tools" / f"cosign-{version}" / "bin" / "cosign"
    if built.exists():
        return built
    found = shutil.which("cosign")
    return Path(found) if found else None


@dataclass(frozen=True)
class Cosign:
    binary: Path
    home: Path

    def run(
        self, *args: str, check: bool = True, password: str = PASSWORD
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "COSIGN_PASSWORD": password,
            "TUF_ROOT": str(self.home / "tuf"),
            "COSIGN_EXPERIMENTAL": "0",
        }
        result = subprocess.run(
            [str(self.binary), *args], env=env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"cosign {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result
