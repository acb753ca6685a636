"""The templates' provenance range is what the build brings in, not the PR's stale base.

GitHub leaves a pull request's ``base.sha`` where the base branch was when the PR last moved
(GitLab its ``diff_refs``). Two PRs open at once: the other one merges first, then this one; the
templates took the range from the stale base, so it held the other PR's commits, which this
PR's review does not hold, and ``review.coversCommits`` refused a reviewed release (found by a
review helper). The templates' own provenance steps run here in bash, in a real repository with
a local ``origin``, with the variables GitHub and GitLab set; nothing leaves the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from review_helpers import ROOT, GitRepo

GITHUB = ROOT / "attestations" / "templates" / "github" / "action.yml"
GITLAB = ROOT / "attestations" / "templates" / "gitlab" / "affidavit.gitlab-ci.yml"
CLAUDE = "Co-authored-by: Claude <noreply@anthropic.com>"


class TwoPullRequests:
    """main: ``opened`` (where both PRs branched), ``other`` (the other PR, merged first), then
    ``merge``, this PR's merge commit of ``ours``."""

    def __init__(self, repo: GitRepo, tmp: Path) -> None:
        self.repo = repo
        self.opened = repo.commit("Initial import")
        repo.git("checkout", "-q", "-b", "rate-limit")
        self.ours = repo.commit(f"Rate-limit logins\n\n{CLAUDE}", filename="login.py")
        repo.git("checkout", "-q", "main")
        self.other = repo.commit(f"Token lifetime\n\n{CLAUDE}", filename="tokens.py")
        self.merge = repo.merge("rate-limit", "Merge pull request #42", ("GitHub", "gh@x.example"))
        origin = tmp / "origin.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(origin)], check=True)
        repo.git("remote", "add", "origin", str(origin))
        repo.git("fetch", "-q", "origin")
        self.out = tmp / "out"
        self.out.mkdir()

    def run(self, script: str, env: dict[str, str]) -> dict[str, object]:
        """Run a template's provenance step; the provenance it wrote."""
        (self.out / "provenance.json").unlink(missing_ok=True)
        base_env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(self.out),
            "OUT": str(self.out),
            "HEAD_SHA": self.merge,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        done = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script],
            env={**base_env, **env},
            cwd=self.repo.path,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        predicate: dict[str, object] = json.loads((self.out / "provenance.json").read_text())
        return predicate

    def stale_records(self) -> None:
        """The PR's JSON as the platforms return it after the merge: the stale base."""
        (self.out / "pr.json").write_text(
            json.dumps(
                {"base": {"sha": self.opened, "ref": "main"}, "merge_commit_sha": self.merge}
            )
        )
        (self.out / "mr.json").write_text(json.dumps({"diff_refs": {"base_sha": self.opened}}))


def _github_step() -> str:
    steps = yaml.safe_load(GITHUB.read_text())["runs"]["steps"]
    (step,) = [s for s in steps if s.get("name") == "Collect ai-provenance/v1"]
    return str(step["run"])


def _gitlab_step() -> str:
    script: list[str] = yaml.safe_load(GITLAB.read_text())[".affidavit-attest"]["script"]
    (step,) = [s for s in script if 'BASE="$AFFIDAVIT_BASE"' in s]
    return step


def _commits(predicate: dict[str, object]) -> set[str]:
    changes = predicate["changes"]
    assert isinstance(changes, list)
    return {c["commit"] for c in changes}


@pytest.fixture
def prs(git_repo: GitRepo, tmp_path: Path) -> TwoPullRequests:
    made = TwoPullRequests(git_repo, tmp_path)
    made.stale_records()
    return made


@pytest.mark.parametrize("event", ["push", "pull_request"])
def test_the_github_template_takes_what_the_build_brings_in(
    prs: TwoPullRequests, event: str
) -> None:
    # a push after the merge: its previous head; a PR's test merge: what it merged into
    env = {"EVENT_NAME": event, "PUSH_BEFORE": prs.other if event == "push" else "", "BASE": ""}
    env |= {"TOOLS": "", "PSEUDONYM_KEY": ""}
    predicate = prs.run(_github_step(), env)
    assert _commits(predicate) == {prs.merge, prs.ours}  # not the other PR's commit
    assert (prs.out / "base").read_text().strip() == prs.other


def test_a_pr_head_build_takes_its_merge_base_with_the_base_branch(prs: TwoPullRequests) -> None:
    # actions/checkout of the PR head (not the test merge), before the merge: since its merge
    # base with main, where the other PR has landed meanwhile
    prs.repo.git("checkout", "-q", "rate-limit")
    prs.repo.git("update-ref", "refs/remotes/origin/main", prs.other)
    env = {"EVENT_NAME": "pull_request", "PUSH_BEFORE": "", "BASE": "", "TOOLS": ""}
    predicate = prs.run(_github_step(), env | {"PSEUDONYM_KEY": "", "HEAD_SHA": prs.ours})
    assert _commits(predicate) == {prs.ours}
    assert (prs.out / "base").read_text().strip() == prs.opened


def test_the_gitlab_template_takes_what_the_pipeline_brings_in(prs: TwoPullRequests) -> None:
    env = {"AFFIDAVIT_BASE": "", "AFFIDAVIT_TOOLS": "", "CI_COMMIT_BEFORE_SHA": prs.other}
    predicate = prs.run(_gitlab_step(), env)
    assert _commits(predicate) == {prs.merge, prs.ours}
    # an MR pipeline: GitLab's diff base for it
    again = prs.run(
        _gitlab_step(),
        env | {"CI_MERGE_REQUEST_IID": "42", "CI_MERGE_REQUEST_DIFF_BASE_SHA": prs.other},
    )
    assert _commits(again) == {prs.merge, prs.ours}
