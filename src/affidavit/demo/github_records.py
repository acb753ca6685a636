"""GitHub REST API records for the sample repository's pull request (a stand-in, and says so).

The demo has no GitHub to ask, so it writes what ``GET /repos/{o}/{r}/pulls/{n}``, ``.../reviews``
and ``.../commits`` would return for its sample pull request, trimmed to the fields those
endpoints really carry and ``affidavit collect review`` reads. This is a fake of GitHub's API,
the one component no test or demo can reach; everything downstream of it is real.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affidavit.demo.sample import ANA, REPOSITORY

API = "https://api.github.com/repos/acme/payments-api"
PR_NUMBER = 42


@dataclass(frozen=True)
class Approval:
    login: str
    name: str
    commit: str  # the revision the reviewer approved
    submitted_at: str = "2026-11-03T15:00:00Z"


@dataclass(frozen=True)
class ReviewRecords:
    pr: Path
    reviews: Path
    commits: Path


def _user(login: str) -> dict[str, Any]:
    """A GitHub user object; the id derives from the login so every run records the same one
    (``hash()`` of a string changes per process)."""
    digest = hashlib.sha256(login.encode()).digest()
    return {"login": login, "id": int.from_bytes(digest[:4], "big") % 10_000_000, "type": "User"}


def _commits(repo: Path, base: str, head: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["git", "-C", str(repo), "log", "--reverse", "--format=%H%x00%an%x00%ae%x00%aI%x00"
         "%cn%x00%ce%x00%cI%x00%B%x1e", f"{base}..{head}"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    commits = []
    for record in filter(str.strip, out.split("\x1e")):
        sha, an, ae, ad, cn, ce, cd, message = record.strip("\n").split("\x00")
        account = _user("ana") if ae == ANA[1] else None
        commits.append(
            {
                "sha": sha,
                "commit": {
                    "author": {"name": an, "email": ae, "date": ad},
                    "committer": {"name": cn, "email": ce, "date": cd},
                    "message": message.strip(),
                },
                "author": account,
                "committer": account,
            }
        )
    return commits


def write_review_records(
    directory: Path, repo: Path, base: str, head: str, approvals: list[Approval]
) -> ReviewRecords:
    """Write pr.json, reviews.json and commits.json for a PR whose head is ``head``."""
    directory.mkdir(parents=True, exist_ok=True)
    pr = {
        "number": PR_NUMBER,
        "html_url": f"{REPOSITORY}/pull/{PR_NUMBER}",
        "title": "Login rate limiting",
        "state": "closed",
        "user": _user("ana"),
        "head": {"ref": "rate-limit", "sha": head},
        "base": {"ref": "main", "sha": base, "repo": {"html_url": REPOSITORY}},
        "merged_at": "2026-11-04T09:00:00Z",
        "merge_commit_sha": None,
        "merged_by": _user("mia") | {"name": "Mia Release"},  # neither author nor reviewer
        "review_comments": 1,
    }
    reviews = [
        {
            "id": 9000 + i,
            "user": _user(a.login) | {"name": a.name},
            "state": "APPROVED",
            "commit_id": a.commit,
            "submitted_at": a.submitted_at,
            "pull_request_url": f"{API}/pulls/{PR_NUMBER}",
        }
        for i, a in enumerate(approvals)
    ]
    records = ReviewRecords(
        directory / "pr.json", directory / "reviews.json", directory / "commits.json"
    )
    records.pr.write_text(json.dumps(pr, indent=2))
    records.reviews.write_text(json.dumps(reviews, indent=2))
    records.commits.write_text(json.dumps(_commits(repo, base, head), indent=2))
    return records
