"""A policy that names a tag covers that tag pinned by digest: the pinning webhook rewrites
``app:1.0`` to ``app:1.0@sha256:...`` before validation, and must not thereby take the image out
of the policy that covered it (nor may a requester escape a policy by adding a digest). An
exception naming a tag does not stretch to every digest written after it.

A digest is what runs, whatever tag is written beside it: a policy naming its repository by a tag
glob still covers it when no glob names it otherwise (``covers_any_tag``)."""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.attestations.reference import ImageReference, canonical_glob
from affidavit.policy import PolicyIndex
from affidavit.policy.matching import covers_any_tag, image_matches
from policy_builders import NOW, exception, policy

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("glob", "ref", "hit"),
    [
        ("reg.example/app:1.0", "reg.example/app:1.0", True),
        ("reg.example/app:1.0", f"reg.example/app:1.0@{DIGEST}", True),
        ("reg.example/app:1.0", f"reg.example/app@{DIGEST}", False),  # no tag named
        ("reg.example/app:1.0", f"reg.example/app:2.0@{DIGEST}", False),
        ("reg.example/app", f"reg.example/app:1.0@{DIGEST}", True),
        ("reg.example/app*", f"reg.example/app:1.0@{DIGEST}", True),
        (f"reg.example/app@{DIGEST}", f"reg.example/app@{DIGEST}", True),
        ("reg.example/other:1.0", f"reg.example/app:1.0@{DIGEST}", False),
    ],
)
def test_a_policy_naming_a_tag_covers_it_pinned_by_digest(glob: str, ref: str, hit: bool) -> None:
    assert image_matches([glob], ref, pinned_tags=True) is hit


def test_exceptions_do_not_stretch_a_tag_to_any_digest() -> None:
    assert not image_matches(["reg.example/app:1.0"], f"reg.example/app:1.0@{DIGEST}")
    assert image_matches(["reg.example/app:1.0"], "reg.example/app:1.0")


@pytest.mark.parametrize(
    ("glob", "ref", "hit"),
    [
        ("reg.example/app:*", f"reg.example/app@{DIGEST}", True),
        ("reg.example/app:v*", f"reg.example/app@{DIGEST}", True),
        ("reg.example/app:1.0", f"reg.example/app:made-up@{DIGEST}", True),
        ("reg.example/*:latest", f"reg.example/team/app@{DIGEST}", True),
        ("reg.example:5000/app:*", f"reg.example:5000/app@{DIGEST}", True),
        ("reg.example/app:*", "reg.example/app:1.0", False),  # no digest: its tag is what runs
        ("reg.example/app:*", f"reg.example/other@{DIGEST}", False),
        ("reg.example/app:*", f"reg.example/app/sub@{DIGEST}", False),
        (f"reg.example/app@{DIGEST}", f"reg.example/app@sha256:{'cd' * 32}", False),
        ("reg.example/app", f"reg.example/app@{DIGEST}", False),  # names no tag: covers() decides
    ],
)
def test_a_digest_is_under_every_tag_glob_of_its_repository(glob: str, ref: str, hit: bool) -> None:
    assert covers_any_tag([canonical_glob(glob)], ImageReference.parse(ref)) is hit


def governing(policies: list[dict[str, Any]], image: str) -> list[str]:
    found = PolicyIndex.from_objects(policies, [], []).effective(
        cluster="c", region="eu-west", namespace="shop", namespace_labels={}, image=image
    )
    return [] if found is None else sorted(p.name for p in found.policies)


def test_a_digest_does_not_escape_a_policy_that_names_its_repository_by_tag() -> None:
    every_tag = policy("every-tag", match={"images": ["reg.example/app:*"]})
    assert governing([every_tag], f"reg.example/app@{DIGEST}") == ["every-tag"]
    assert governing([every_tag], f"reg.example/app:made-up@{DIGEST}") == ["every-tag"]
    one_tag = policy("one-tag", match={"images": ["reg.example/app:1.0"]})
    assert governing([one_tag], f"reg.example/app:2.0@{DIGEST}") == ["one-tag"]
    assert governing([one_tag], f"reg.example/other@{DIGEST}") == []


def test_a_tag_a_policy_names_still_picks_that_policy_alone() -> None:
    """Per-tag policies keep working: a digest pinned to a tag one of them names is judged by
    that one; only a digest no glob names falls back to all of its repository's."""
    v1 = policy("v1", match={"images": ["reg.example/app:1.*"]})
    v2 = policy("v2", match={"images": ["reg.example/app:2.*"]})
    assert governing([v1, v2], f"reg.example/app:1.0@{DIGEST}") == ["v1"]
    assert governing([v1, v2], f"reg.example/app@{DIGEST}") == ["v1", "v2"]
    assert governing([v1, v2], f"reg.example/app:3.0@{DIGEST}") == ["v1", "v2"]


def test_an_exception_naming_a_tag_still_does_not_stretch_to_a_digest() -> None:
    """Exceptions only admit: a digest never falls under one through a tag glob."""
    granted = exception("hotfix", images=["reg.example/app:*"])
    index = PolicyIndex.from_objects(
        [policy("p", match={"images": ["reg.example/app*"]})], [], [granted]
    )
    assert [e.name for e in index.exceptions_for("shop", "Pod", "p", "reg.example/app:1", NOW)] == [
        "hotfix"
    ]
    assert index.exceptions_for("shop", "Pod", "p", f"reg.example/app@{DIGEST}", NOW) == []


def test_a_repository_wide_policy_decides_a_bare_digest_it_names() -> None:
    """A tag beside a digest is the requester's word, so tag policies of one repository cannot
    be a boundary: a digest a repository-wide policy names is judged by that one, as a digest
    written with any tag is; holding it to every tag's policy too would refuse honest
    deployments by digest and stop nobody (``app:dev@sha256:<prod>``)."""
    prod = policy("prod", match={"images": ["reg.example/app:prod-*"]})
    base = policy("base", match={"images": ["reg.example/*"]})
    assert governing([prod, base], f"reg.example/app@{DIGEST}") == ["base"]
    assert governing([prod, base], f"reg.example/app:prod-1@{DIGEST}") == ["base", "prod"]
    assert governing([prod], f"reg.example/app@{DIGEST}") == ["prod"]  # nothing else names it


def test_a_tag_written_beside_a_digest_does_not_escape_a_glob_naming_the_digest() -> None:
    pinned = policy("pinned", match={"images": [f"reg.example/app@{DIGEST}"]})
    assert governing([pinned], f"reg.example/app@{DIGEST}") == ["pinned"]
    assert governing([pinned], f"reg.example/app:x@{DIGEST}") == ["pinned"]
    assert governing([pinned], f"reg.example/app:x@sha256:{'cd' * 32}") == []
