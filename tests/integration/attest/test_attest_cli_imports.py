"""The CLI imports only what the command it runs uses: ``affidavit verify`` (its help, and a real
verification against the real registry) loads neither the ledger's SQLAlchemy nor the webhook's
web stack nor the operator's Kubernetes clients nor the policy engine's CRD models; starting them
cost most of a verify's time. A real verify also leaves out what only other commands use: the
other commands' modules, the predicate models, X.509, PyNaCl, and httpx's own command-line client
(click, rich, pygments).
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

#: What a real ``affidavit verify --key`` has no use for either (its ``--help`` renders with rich).
NOT_FOR_VERIFY = [
    "affidavit.attestations.predicates",
    "affidavit.audit",
    "affidavit.cli.audit",
    "affidavit.cli.collect",
    "affidavit.cli.webhook",
    "click",
    "cryptography.x509",
    "nacl",
    "pygments",
    "rich",
    "sigstore",
    "yaml",
]

_PROBE = """
import json, sys
from affidavit.cli.main import main
code = main(sys.argv[1:])
names = {".".join(m.split(".")[:n]) for m in sys.modules for n in (1, 2, 3, 4)}
loaded = sorted(names & set(json.loads(HEAVY)))
print("LOADED " + json.dumps({"code": code, "heavy": loaded}))
"""


def _imports(*argv: str, heavy: list[str] = HEAVY) -> dict[str, object]:
    probe = _PROBE.replace("json.loads(HEAVY)", f"json.loads({json.dumps(json.dumps(heavy))})")
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("LOADED ")]
    assert lines, done.stderr
    line = lines[-1]
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


def test_a_real_verify_imports_only_the_verify_path(
    new_image: Callable[..., ImageReference], client: RegistryClient, key: KeyPair, tmp_path: Path
) -> None:
    image = new_image()
    attest(client, image, key)
    argv = ("verify", str(image), "--key", str(key.public_path))
    assert _imports(*argv, heavy=NOT_FOR_VERIFY) == {"code": 0, "heavy": []}
    # the same probe sees them where a command uses them: attest checks a predicate's model
    predicate = tmp_path / "p.json"
    predicate.write_text("{}")
    attested = _imports(
        "attest", "--image", str(image), "--predicate", str(predicate), "--key",
        str(key.private_path), "--type", "https://affidavit.dev/attestations/ai-provenance/v1",
        heavy=NOT_FOR_VERIFY,
    )  # fmt: skip
    assert attested == {"code": 2, "heavy": ["affidavit.attestations.predicates"]}


def test_the_ledger_commands_still_load_the_ledger(tmp_path: Path) -> None:
    # the laziness is per command: reading the ledger still imports it (here: a missing file)
    result = _imports("decisions", "verify-chain", "--ledger", f"sqlite:///{tmp_path / 'x.db'}")
    assert result["code"] != 0
    assert "sqlalchemy" in result["heavy"]  # type: ignore[operator]


def test_each_command_is_found_in_the_module_that_registers_it() -> None:
    # `affidavit COMMAND` builds the CLI from COMMAND_MODULES[COMMAND] alone: the table must
    # name every command of every module, or that command would be missing when run directly
    import typer.main

    from affidavit.cli.main import COMMAND_MODULES, MODULES, build_app

    for module in MODULES:
        commands = set(typer.main.get_group(build_app([module])).commands) - {"version"}
        assert commands == {c for c, m in COMMAND_MODULES.items() if m == module}, module
    assert set(COMMAND_MODULES.values()) == set(MODULES)


#: What a plain ``affidavit verify IMAGE --key K`` (``cli/verify.py``) starts without: the CLI
#: framework and its type adapters, and an HTTP stack beside the registry client's own (httpx's
#: client module: ``affidavit`` itself puts a ``httpx._main`` entry in ``sys.modules``); and,
#: for a P-256 key and one attestation, what costs more to import than it saves: orjson,
#: cryptography's key serialization (SSH formats, every cipher) and OpenSSL backend, cosign's
#: key files, concurrent.futures, logging.
NOT_FOR_A_PLAIN_VERIFY = [
    "affidavit.attestations.cosign_keys",
    "concurrent.futures",
    "cryptography.hazmat.backends",
    "cryptography.hazmat.primitives.serialization",
    "h11",
    "httpcore",
    "httpx._client",
    "logging",
    "orjson",
    "pydantic",
    "typer",
]


def test_a_plain_verify_starts_without_typer_pydantic_or_httpx(
    new_image: Callable[..., ImageReference], client: RegistryClient, key: KeyPair
) -> None:
    image = new_image()
    attest(client, image, key)
    argv = ("verify", str(image), "--key", str(key.public_path))
    assert _imports(*argv, heavy=NOT_FOR_A_PLAIN_VERIFY) == {"code": 0, "heavy": []}
    # the same probe sees typer where it is used: help and usage errors are still its own
    helped = _imports("verify", "--help", heavy=NOT_FOR_A_PLAIN_VERIFY)
    assert helped["code"] == 0
    assert "typer" in helped["heavy"]  # type: ignore[operator]
