"""Helpers shared by the operator's end-to-end tests (names, polling, kubectl JSON)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

CRDS = Path(__file__).resolve().parents[3] / "charts" / "affidavit" / "crds"
NAMESPACE = "affidavit-operator-e2e"
WEBHOOK_CONFIGURATION = "affidavit-operator-e2e"
CERT_LIFETIME = 30.0  # seconds; renewed when less than half is left (long enough that a
# loaded machine's slow polls never miss a whole rotation)
RENEW_FRACTION = 0.5


@dataclass(frozen=True)
class RunningOperator:
    namespace: str
    cert_dir: Path
    ledger_url: str
    webhook_url: str
    log: Path
    proc: subprocess.Popen[bytes]
    readiness_url: str = ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def get_json(kubectl: Kubectl, *args: str) -> Any:
    proc = kubectl("get", *args, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None
