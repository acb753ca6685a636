"""A policy that names a tag covers that tag pinned by digest: the pinning webhook rewrites
``app:1.0`` to ``app:1.0@sha256:...`` before validation, and must not thereby take the image out
of the policy that covered it (nor may a requester escape a policy by adding a digest). An
exception naming a tag does not stretch to every digest written after it."""

from __future__ import annotations

import pytest

from affidavit.policy.matching import image_matches

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
