"""The CLI imports only what the command it runs uses: ``affidavit verify`` (its help, and a real
verification against the real registry) loads neither the ledger's SQLAlchemy nor the webhook's
web stack nor the operator's Kubernetes clients nor the policy engine's CRD models; starting them
cost most of a verify's time.
Each check runs the CLI in a fresh interpreter, which then reports what it imported."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from attest_support import KeyPair, attest

from affidavit.attestations.registry import ImageReference, RegistryClient

#: Packages (and Affidavit's own subpackages) a verify has no use for.
HEAVY = [
    "affidavit.policy",
    "fastapi",
    "kopf",
    "kubernetes",
    "sqlalchemy",
    "starlette",
    "uvicorn",
]

_PROBE = """
import json, sys
from affidavit.cli.main import main
code = main(sys.argv[1:])
names = {m.split(".")[0] for m in sys.modules} | {".".join(m.split(".")[:2]) for m in sys.modules}
loaded = sorted(names & set(json.loads(HEAVY)))
print("LOADED " + json.dumps({"code": code, "heavy": loaded}))
"""


def _imports(*argv: str) -> dict[str, object]:
    probe = _PROBE.replace("json.loads(HEAVY)", f"json.loads({json.dumps(json.dumps(HEAVY))})")
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120
    ).stdout
    line = [x for x in out.splitlines() if x.startswith("LOADED ")][-1]
    result: dict[str, object] = json.loads(line.removeprefix("LOADED "))
    return result


def test_verify_help_loads_no_ledger_web_or_kubernetes_stack() -> None:
    assert _imports("verify", "--help") == {"code": 0, "heavy": []}


def test_a_real_verify_loads_no_ledger_web_or_kubernetes_stack(
    new_image: Callable[..., ImageReference], client: RegistryClient, key: KeyPair
) -> None:
    image = new_image()
    attest(client, image, key)
    result = _imports("verify", str(image), "--key", str(key.public_path))
    assert result == {"code": 0, "heavy": []}


def test_the_ledger_commands_still_load_the_ledger(tmp_path: Path) -> None:
    # the laziness is per command: reading the ledger still imports it (here: a missing file)
    result = _imports("decisions", "verify-chain", "--ledger", f"sqlite:///{tmp_path / 'x.db'}")
    assert result["code"] != 0
    assert "sqlalchemy" in result["heavy"]  # type: ignore[operator]
