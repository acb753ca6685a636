"""The GitLab template reads every page of a merge request's commits, versions and notes.

GitLab sends at most 100 items a page. The template fetched ``commits?per_page=100`` once, so
on a merge request of more than 100 commits the authors and committers of the older ones were
unknown to ``collect review``, and their approvals counted as independent. Here the template's
own steps run in bash against a server on loopback that answers GitLab's REST paths with the
recorded real-shaped responses of ``tests/fixtures/gitlab`` (a fake of GitLab's API: no test can
reach gitlab.com): ``committer-approval``'s commits spread over two pages behind 100 commits of
filler (Dave, who committed the head and approved, must not count as independent), and
``approved-then-pushed``'s notes behind 100 comments, where the template's own review step must
find that bob approved the revision before the AI commit.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from review_helpers import GITLAB, ROOT, review_json

TEMPLATE = ROOT / "attestations" / "templates" / "gitlab" / "affidavit.gitlab-ci.yml"
FIXTURE = GITLAB / "committer-approval"
PUSHED = GITLAB / "approved-then-pushed"
PROJECT, MR = "4821", "70"


def _commits() -> list[dict[str, Any]]:
    """100 commits by the fixture's author, then the fixture's two (Dave's among them): Dave's
    commit lands on the second page."""
    recorded = json.loads((FIXTURE / "commits.json").read_text())
    older = []
    for n in range(100):
        commit = copy.deepcopy(recorded[1])
        sha = f"{n:040x}"
        commit.update(id=sha, short_id=sha[:8], title=f"step {n}", message=f"step {n}\n")
        older.append(commit)
    return [*older, *recorded]


def _comments() -> list[dict[str, Any]]:
    """100 comments, newer than every note of ``approved-then-pushed`` (made after the merge):
    its approvals land on the second page of notes, newest first."""
    recorded = json.loads((PUSHED / "notes.json").read_text())
    comment = next(n for n in recorded if n["body"] == "approved this merge request")
    return [
        {
            **comment,
            "id": 1940000 + n,
            "body": f"looks fine ({n})",
            "system": False,
            "created_at": f"2025-06-04T09:{n // 60:02d}:{n % 60:02d}.000Z",
        }
        for n in range(100)
    ]


class _GitLab(BaseHTTPRequestHandler):
    folder: ClassVar[Path] = FIXTURE
    lists: ClassVar[dict[str, list[dict[str, Any]]]] = {}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        base = f"/api/v4/projects/{PROJECT}/merge_requests/{MR}"
        body: Any
        if self.headers.get("PRIVATE-TOKEN") != "t0ken":
            self.send_error(401)
            return
        listed = url.path.removeprefix(base + "/")
        query = parse_qs(url.query)
        if url.path == base:
            body = json.loads((self.folder / "mr.json").read_text())
        elif url.path == base + "/approvals":
            body = json.loads((self.folder / "approvals.json").read_text())
        elif listed in self.lists:
            items = self.lists[listed]
            if listed == "notes":  # GitLab's default order: newest first
                items = sorted(items, key=lambda n: n["created_at"], reverse=True)
            size = min(int(query.get("per_page", ["20"])[0]), 100)
            page = int(query.get("page", ["1"])[0])
            body = items[(page - 1) * size : page * size]
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(folder: Path, **lists: list[dict[str, Any]]) -> None:
    """Answer from ``folder``'s files; ``lists`` replace its paged ones."""
    _GitLab.folder = folder
    _GitLab.lists = {
        name: lists.get(name) or json.loads((folder / f"{name}.json").read_text())
        for name in ("commits", "versions", "notes")
    }


@pytest.fixture
def gitlab_api() -> Iterator[str]:
    _serve(FIXTURE, commits=_commits())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitLab)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    finally:
        server.shutdown()
        server.server_close()


def _step(marker: str) -> str:
    """The template's one step whose script holds ``marker``."""
    script: list[str] = yaml.safe_load(TEMPLATE.read_text())[".affidavit-attest"]["script"]
    (step,) = [s for s in script if marker in s]
    return step


def _fetch_step() -> str:
    """The template's step that fetches the merge request's JSON (the one naming per_page)."""
    return _step("per_page")


def test_every_page_of_commits_is_fetched_and_the_committer_is_no_independent_reviewer(
    gitlab_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "OUT": str(tmp_path),
        "API": f"{gitlab_api}/projects/{PROJECT}",
        "CI_MERGE_REQUEST_IID": MR,
        "AFFIDAVIT_MAX_PAGES": "100",
        "AFFIDAVIT_GITLAB_TOKEN": "t0ken",
        "HEAD_SHA": json.loads((FIXTURE / "mr.json").read_text())["sha"],
    }
    subprocess.run(["bash", "-eo", "pipefail", "-c", _fetch_step()], env=env, check=True)
    pages = (tmp_path / "commits.json").read_text().splitlines()
    assert [len(json.loads(p)) for p in pages] == [100, 2]
    predicate = review_json(
        capsys,
        "--gitlab-mr", str(tmp_path / "mr.json"),
        "--gitlab-approvals", str(tmp_path / "approvals.json"),
        "--gitlab-commits", str(tmp_path / "commits.json"),
        "--gitlab-versions", str(tmp_path / "versions.json"),
        "--gitlab-notes", str(tmp_path / "notes.json"),
    )  # fmt: skip
    independent = [r["reviewer"]["login"] for r in predicate["reviews"] if r["independent"]]
    assert independent == ["carol"]  # as with the fixture's own one-page file; with the first
    # page alone, Dave's approval counted as independent too


def test_a_failing_page_fails_the_step(gitlab_api: str, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "OUT": str(tmp_path),
        "API": f"{gitlab_api}/projects/{PROJECT}",
        "CI_MERGE_REQUEST_IID": MR,
        "AFFIDAVIT_MAX_PAGES": "100",
        "AFFIDAVIT_GITLAB_TOKEN": "wrong",
        "HEAD_SHA": "0" * 40,
    }
    done = subprocess.run(["bash", "-c", _fetch_step()], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "401" in done.stderr


def test_the_templates_review_step_finds_the_approval_given_before_the_ai_commit(
    gitlab_api: str, tmp_path: Path
) -> None:
    """The template's own fetch step, then its own review step (the real ``affidavit`` on PATH):
    the notes come in two pages, newest first, the approvals on the second."""
    _serve(PUSHED, notes=[*_comments(), *json.loads((PUSHED / "notes.json").read_text())])
    head = json.loads((PUSHED / "mr.json").read_text())["sha"]
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "OUT": str(tmp_path),
        "API": f"{gitlab_api}/projects/{PROJECT}",
        "CI_MERGE_REQUEST_IID": MR,
        "AFFIDAVIT_MAX_PAGES": "100",
        "AFFIDAVIT_GITLAB_TOKEN": "t0ken",
        "HEAD_SHA": head,
        "CI_PROJECT_URL": "https://gitlab.example.com/acme/platform/ledger-service",
        "TOOLS_ARGS": "",
    }
    subprocess.run(["bash", "-eo", "pipefail", "-c", _fetch_step()], env=env, check=True)
    notes = (tmp_path / "notes.json").read_text().splitlines()
    assert [len(json.loads(p)) for p in notes] == [100, 9]
    review = _step("collect review $TOOLS_ARGS --gitlab-mr")
    # not in a git repository and no BASE: the step's `git fetch` of the MR's head fails on
    # the spot (no remote is reached) and its commits are not matched in a range
    subprocess.run(["bash", "-eo", "pipefail", "-c", review], env=env, check=True, cwd=tmp_path)
    predicate = json.loads((tmp_path / "review.json").read_text())
    on_final = {r["reviewer"]["login"]: r["onFinalRevision"] for r in predicate["reviews"]}
    assert on_final == {"bob": False, "carol": True}
    assert predicate["summary"]["approvalsOnFinalRevision"] == 1


def test_past_the_page_limit_the_step_fails_rather_than_attest_a_partial_list(
    gitlab_api: str, tmp_path: Path
) -> None:
    """102 commits, a limit of one page: the second page is not dropped in silence (Dave, who
    committed and approved, is on it, and would count as independent)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "OUT": str(tmp_path),
        "API": f"{gitlab_api}/projects/{PROJECT}",
        "CI_MERGE_REQUEST_IID": MR,
        "AFFIDAVIT_MAX_PAGES": "1",
        "AFFIDAVIT_GITLAB_TOKEN": "t0ken",
        "HEAD_SHA": json.loads((FIXTURE / "mr.json").read_text())["sha"],
    }
    done = subprocess.run(["bash", "-c", _fetch_step()], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == (
        f"affidavit: {gitlab_api}/projects/{PROJECT}/merge_requests/{MR}/commits has more than 1 "
        "pages of 100; refusing to attest a partial list (raise AFFIDAVIT_MAX_PAGES)\n"
    )


def test_review_files_committed_where_the_job_writes_are_never_read(tmp_path: Path) -> None:
    """The job wrote the merge request's JSON into the checkout's `.affidavit/` (where the
    repository keeps tiers.yaml), and read `mr.json` from there when it found no merge request:
    a committed `.affidavit/mr.json` set the range's base (leaving an earlier AI commit out).
    Its folder is now its own, emptied before anything is fetched."""
    variables = yaml.safe_load(TEMPLATE.read_text())[".affidavit-attest"]["variables"]
    assert variables["OUT"] == "${CI_PROJECT_DIR}/.affidavit-attest"
    out = tmp_path / ".affidavit-attest"
    out.mkdir()
    (out / "mr.json").write_text(json.dumps({"diff_refs": {"base_sha": "f" * 40}}))
    (out / "commits.json").write_text("[]\n")
    step = _step('mkdir -p "$OUT"')
    subprocess.run(["bash", "-eo", "pipefail", "-c", step],
                   env={"PATH": "/usr/bin:/bin", "OUT": str(out)}, check=True)  # fmt: skip
    assert out.is_dir() and list(out.iterdir()) == []
