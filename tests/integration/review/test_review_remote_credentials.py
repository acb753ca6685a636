"""A repository URL with credentials in it is recorded without them, by every collector.

Attestations are published beside the image and kept for years. GitLab CI clones from
``https://gitlab-ci-token:<job token>@host/…`` (and offers that URL as ``CI_REPOSITORY_URL``, which
a pipeline may pass to ``--repository``); other CI systems clone with a personal access token in
the URL. Before, that token went into the signed provenance or review as the source repository.
Real git repositories, the real CLI; the GitHub and GitLab records are the recorded fixtures.
"""

from __future__ import annotations

import json

import pytest
from review_helpers import GitRepo, github_args, gitlab_args, review_json, run_cli

from affidavit.collect.remote import public_url

TOKEN = "glcbt-64_SECRETsecret"
WITH_TOKEN = f"https://gitlab-ci-token:{TOKEN}@gitlab.example.com/shop/checkout.git"
CLEAN = "https://gitlab.example.com/shop/checkout.git"


@pytest.mark.parametrize(
    ("url", "recorded"),
    [
        (WITH_TOKEN, CLEAN),
        ("https://x-access-token:ghs_abc@github.com/acme/shop", "https://github.com/acme/shop"),
        ("https://oauth2:p@ss:w@rd@host.example:8443/a/b.git", "https://host.example:8443/a/b.git"),
        ("ssh://git@github.com/acme/shop.git", "ssh://github.com/acme/shop.git"),
        ("https://github.com/acme/shop", "https://github.com/acme/shop"),
        ("git@github.com:acme/shop.git", "git@github.com:acme/shop.git"),  # no password possible
        ("file:///srv/git/shop.git", "file:///srv/git/shop.git"),
        ("/srv/git/shop", "/srv/git/shop"),
        ("https://github.com/acme/shop?ref=a@b", "https://github.com/acme/shop?ref=a@b"),
    ],
)
def test_public_url(url: str, recorded: str) -> None:
    assert public_url(url) == recorded


def test_provenance_and_trailer_review_drop_the_token_of_the_origin_remote(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo
) -> None:
    base = git_repo.commit("Initial import")
    git_repo.commit("Add checkout\n\nReviewed-by: Bob Okafor <bob@acme.example>")
    git_repo.git("remote", "add", "origin", WITH_TOKEN)
    code, out, err = run_cli(
        capsys,
        "collect",
        "provenance",
        "--repo",
        str(git_repo.path),
        "--base",
        base,
        "--head",
        "HEAD",
    )
    assert code == 0, err
    assert json.loads(out)["source"]["repository"] == CLEAN
    review = review_json(
        capsys, "--trailers", "--repo", str(git_repo.path), "--base", base, "--head", "HEAD"
    )
    assert review["source"]["repository"] == CLEAN
    assert TOKEN not in out + json.dumps(review)


@pytest.mark.parametrize("system", ["github", "gitlab"])
def test_a_repository_flag_with_a_token_is_recorded_without_it(
    capsys: pytest.CaptureFixture[str], system: str
) -> None:
    args = (
        github_args("approved-final-revision")
        if system == "github"
        else gitlab_args("approved-final-revision")
    )
    review = review_json(capsys, *args, "--repository", WITH_TOKEN)
    assert review["source"]["repository"] == CLEAN
    assert TOKEN not in json.dumps(review)
