"""The pipeline templates' copy step, run as the CI runner runs it: the GitHub action's step
script and the GitLab job's script line, in bash, with the real ``affidavit`` on PATH, copying
an attested image into two repositories of a second real registry. The step must copy to each
repository named, and do nothing when none is."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from copy_support import PROVENANCE, Keys, attest

from affidavit.attestations.fetch import fetch
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.verify import verify_fetched

ROOT = Path(__file__).resolve().parents[3]
NewImage = Callable[..., tuple[ImageReference, str]]


def github_step() -> tuple[str, dict[str, str]]:
    action: dict[str, Any] = yaml.safe_load(
        (ROOT / "attestations/templates/github/action.yml").read_text()
    )
    (step,) = [s for s in action["runs"]["steps"] if "copy-to" in s.get("if", "")]
    return step["run"], step["env"]


def gitlab_script() -> str:
    ci: dict[str, Any] = yaml.safe_load(
        (ROOT / "attestations/templates/gitlab/affidavit.gitlab-ci.yml").read_text()
    )
    (line,) = [s for s in ci[".affidavit-attest"]["script"] if "affidavit copy" in s]
    return str(line)


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("template", ["github", "gitlab"])
def test_the_templates_copy_step_copies_into_each_repository_named(
    template: str, new_image: NewImage, client: RegistryClient, keys: Keys
) -> None:
    image, mirror = new_image(f"{template}\n".encode())
    attest(client, image, keys, PROVENANCE)
    destinations = [f"{mirror}-eu", f"{mirror}-us"]
    if template == "github":
        script, declared = github_step()
        assert set(declared) == {"IMAGE", "COPY_TO"}
        env = {"IMAGE": str(image), "COPY_TO": " ".join(destinations)}
    else:
        script = gitlab_script()
        env = {"AFFIDAVIT_IMAGE": str(image), "AFFIDAVIT_COPY_TO": " ".join(destinations)}
    done = bash(script, env)
    assert done.returncode == 0, done.stdout + done.stderr
    for destination in destinations:
        copied = ImageReference.parse(destination).with_digest(image.digest or "")
        evidence = verify_fetched(fetch(client, copied), copied, [keys.trusted])
        assert [a.predicate_type for a in evidence.verified] == [PROVENANCE], destination
    # nothing named: the step does nothing (GitHub skips it by its `if`; GitLab's loop is empty)
    if template == "gitlab":
        assert (
            bash(script, {"AFFIDAVIT_IMAGE": str(image), "AFFIDAVIT_COPY_TO": ""}).returncode == 0
        )
