"""Tests how ``kubectl affidavit`` ships: the console script the package installs, and the krew
manifest whose archive file runs the same plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = ("why", "explain", "exceptions", "policy")


def test_the_package_installs_kubectl_affidavit() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-affidavit"] == "affidavit.cli.kubectl_plugin:main"
    installed = Path(sys.executable).parent / "kubectl-affidavit"
    got = subprocess.run([installed, "--help"], capture_output=True, text=True, check=False)
    assert got.returncode == 0, got.stderr
    assert "Usage: kubectl affidavit [OPTIONS] COMMAND [ARGS]..." in got.stdout
    for command in COMMANDS:
        assert f"\n  {command} " in got.stdout  # its row under Commands:


def test_the_krew_manifest_names_a_file_that_runs_the_plugin() -> None:
    manifest = yaml.safe_load((ROOT / "plugins" / "affidavit.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]) == (
        "krew.googlecontainertools.github.com/v1alpha2",
        "Plugin",
        "affidavit",
    )
    spec = manifest["spec"]
    for field in ("version", "homepage", "shortDescription", "description", "platforms"):
        assert spec[field], field
    for command in COMMANDS:
        assert f"kubectl affidavit {command}" in spec["description"]
    (platform,) = spec["platforms"]
    assert len(platform["sha256"]) == 64 and platform["bin"] == "kubectl-affidavit"
    shim = next(ROOT / f["from"] for f in platform["files"] if f["from"].endswith(platform["bin"]))
    assert os.access(shim, os.X_OK)
    env = {**os.environ, "AFFIDAVIT_PYTHON": sys.executable}
    got = subprocess.run([shim, "exceptions", "--help"], capture_output=True, text=True, env=env)
    assert got.returncode == 0, got.stderr
    assert "Usage: kubectl affidavit exceptions [OPTIONS]" in got.stdout
