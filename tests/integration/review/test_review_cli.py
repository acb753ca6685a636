"""The ``affidavit collect review`` command itself: choosing exactly one source, --head and
--output handling, the console script, the spec's schema and example, and that the pipeline
templates call the command with options it really has.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from review_helpers import GITHUB, GITLAB, ROOT, SCHEMA, github_args, gitlab_args, run_cli

from affidavit.attestations.predicates.review import CodeReview
from affidavit.cli.main import app

SOURCES = (
    "  hint: --github-pr PR.json --github-reviews REVIEWS.json --github-commits COMMITS.json, "
    "--gitlab-mr MR.json --gitlab-approvals APPROVALS.json [--gitlab-versions VERSIONS.json "
    "--gitlab-notes NOTES.json], or --trailers --repo PATH --base A --head B\n"
)


def test_no_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "collect", "review")
    assert (code, out) == (2, "")
    assert err == "error: collect review needs exactly one source, got no source\n" + SOURCES


def test_two_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        capsys, "collect", "review", *github_args("dismissed"), *gitlab_args("bot-approval")
    )
    assert code == 2
    assert (
        err == "error: collect review needs exactly one source, got GitHub and GitLab\n" + SOURCES
    )


def test_incomplete_github_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "collect", "review", *github_args("dismissed")[:2])
    assert code == 2
    assert err == (
        "error: collect review from GitHub needs --github-reviews, --github-commits\n"
        "  hint: give one source: " + SOURCES.removeprefix("  hint: ")
    )


def test_trailers_need_a_range(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "collect", "review", "--trailers", "--head", "HEAD")
    assert code == 2
    assert err.startswith("error: collect review --trailers needs --base\n")


def test_abbreviated_head_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        capsys, "collect", "review", *github_args("dismissed"), "--head", "1a2b3c"
    )
    assert code == 2
    assert err == (
        "error: --head '1a2b3c' is not a full commit id (40 or 64 lower-case hex digits)\n"
        '  hint: pass the full id, e.g. --head "$(git rev-parse HEAD)"\n'
    )


def test_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "review.json"
    code, out, _ = run_cli(
        capsys, "collect", "review", *github_args("bot-approval"), "--output", str(target)
    )
    assert (code, out) == (0, "")
    predicate = json.loads(target.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(predicate)
    assert predicate["summary"]["approvalsOnFinalRevision"] == 1


def test_console_script_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "affidavit"),
            "collect",
            "review",
            *gitlab_args("self-approval"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["independentApprovals"] == 1


@pytest.mark.parametrize(
    "folder",
    sorted(p for p in [*GITHUB.iterdir(), *GITLAB.iterdir()] if p.is_dir()),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_fixture_round_trips_through_model_and_schema(
    capsys: pytest.CaptureFixture[str], folder: Path
) -> None:
    args = github_args(folder) if folder.parent == GITHUB else gitlab_args(folder)
    code, out, err = run_cli(capsys, "collect", "review", *args)
    assert code == 0, err
    wire = json.loads(out)
    jsonschema.Draft202012Validator(SCHEMA).validate(wire)
    assert CodeReview.model_validate(wire).to_wire() == wire


def test_schema_is_valid_and_rejects_what_the_model_rejects() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    example = json.loads((ROOT / "attestations/code-review/v1/example.json").read_text())
    CodeReview.model_validate(example)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    validator.validate(example)
    assert not validator.is_valid({**example, "extra": 1})
    assert not validator.is_valid({**example, "reviews": [{"reviewer": {}, "state": "lgtm"}]})
    assert not validator.is_valid({**example, "source": {**example["source"], "revision": "abc"}})


def _review_options() -> set[str]:
    import typer.main

    group = typer.main.get_command(app)
    command = group.commands["collect"].commands["review"]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in param.opts}


def _attest_options() -> set[str]:
    import typer.main

    command = typer.main.get_command(app).commands["attest"]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in param.opts}


def _flags_after(text: str, command: str) -> set[str]:
    flags: set[str] = set()
    for match in re.finditer(re.escape(command) + r"((?:[^\n]*\\\n)*[^\n]*)", text):
        flags |= set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", match.group(1)))
    return flags


@pytest.mark.parametrize(
    "template",
    [
        "attestations/templates/github/action.yml",
        "attestations/templates/gitlab/affidavit.gitlab-ci.yml",
    ],
)
def test_templates_use_only_real_options(template: str) -> None:
    text = (ROOT / template).read_text()
    yaml.safe_load(text)
    used = _flags_after(text, "affidavit collect review")
    assert {"--head", "--output", "--trailers", "--base", "--repo", "--repository"} <= used
    assert used <= _review_options()
    sign = '"${sign[@]}"' if "github" in template else '"$@"'
    for predicate_type in ("ai-provenance/v1", "code-review/v1"):
        assert f"--type https://affidavit.dev/attestations/{predicate_type} {sign}" in text
    attest = _flags_after(text, "affidavit attest") | _flags_after(text, "sign=(")
    attest |= _flags_after(text, "set --") | _flags_after(text, "sign+=(")
    assert {"--key", "--sigstore", "--trusted-root", "--signing-config"} <= attest
    assert attest <= _attest_options() | {"--"}
