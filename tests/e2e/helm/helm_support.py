"""Helpers shared by the Helm chart tests: chart paths, running helm, loading YAML."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from affidavit.envtest import BinariesMissingError, find_binaries, pinned_versions

IN_CI = os.environ.get("CI") == "true"
CHART = Path(__file__).resolve().parents[3] / "charts" / "affidavit"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))

#: `helm template` renders for the Kubernetes version the control plane runs.
KUBE_VERSION_ARGS = ("--kube-version", pinned_versions()["K8S_VERSION"])

Render = Callable[..., list[dict[str, Any]]]


def helm_binary() -> Path:
    """The helm binary built by scripts/k8s-binaries (a failure in CI, a skip elsewhere)."""
    try:
        return find_binaries(("helm",)) / "helm"
    except BinariesMissingError as e:
        if IN_CI:
            pytest.fail(str(e))
        pytest.skip(str(e))
        raise AssertionError("unreachable") from e


def run_helm(
    helm: Path,
    *args: str | Path,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(helm), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
