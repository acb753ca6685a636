"""Fixtures for the Helm chart tests: the cached helm binary and a renderer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_support import CHART, KUBE_VERSION_ARGS, Render, helm_binary, run_helm


@pytest.fixture(scope="session")
def helm() -> Path:
    return helm_binary()


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """``render(*extra_args)`` -> the documents of `helm template` (release affidavit)."""

    def run(*extra: str | Path, namespace: str = "affidavit-system") -> list[dict[str, Any]]:
        out = run_helm(
            helm, "template", "affidavit", CHART, "--namespace", namespace,
            *KUBE_VERSION_ARGS, *extra,
        )  # fmt: skip
        return [d for d in yaml.safe_load_all(out.stdout) if d]

    return run
