"""A keyless signer's subject pattern that a stranger's workflow on a public forge also matches.

Each pattern below is one a policy author could write for GitHub Actions (or gitlab.com). Those
that end the owner's name with ``/`` trust one owner; the others also match a subject of an
owner anyone can create, and the finding names that subject (an example the pattern matches
whole, never a guess). Patterns this cannot build an example for are not reported.
"""

from __future__ import annotations

import re

import pytest

from affidavit.policy.explain import explain_policy
from affidavit.policy.signer_model import Signers
from affidavit.policy.signer_scope import open_signers, stranger_subject
from policy_builders import IMAGE, index, policy

GITHUB = "https://token.actions.githubusercontent.com"
GITLAB = "https://gitlab.com"
TAIL = "/app/.github/workflows/release.yml@refs/heads/main"


@pytest.mark.parametrize(
    ("pattern", "stranger"),
    [
        (r"https://github\.com/acme/.+", None),
        (r"https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/heads/main", None),
        (r"https://github\.com/acme/payments/\.github/workflows/release\.yml@refs/tags/v.*", None),
        (r"https://github\.com/(acme|acme-labs)/.*", None),
        (r"(?i)https://github\.com/acme/.*", None),
        (r"https://github.com/acme/.*", None),  # the unescaped dots: Fulcio writes github.com
        (r"https://github\.com/acme.*", f"https://github.com/acme-intruder{TAIL}"),
        (r"https://github\.com/acme\b.*", f"https://github.com/acme-intruder{TAIL}"),
        (r"https://github\.com/(acme|acme-labs).*", f"https://github.com/acme-intruder{TAIL}"),
        (
            r"https://github\.com/acme[^/]*/payments/\.github/workflows/.*",
            "https://github.com/acme-intruder/payments/.github/workflows/",
        ),
        (
            r"https://github\.com/.*/payments/\.github/workflows/release\.yml@refs/heads/main",
            "https://github.com/intruder/payments/.github/workflows/release.yml@refs/heads/main",
        ),
        (r"https://github\.com/\w+/payments/.+", "https://github.com/intruder/payments/a"),
        (r".*", f"https://github.com/intruder{TAIL}"),
        (
            r"https://github\.com/acme/.*|https://github\.com/.*",
            "https://github.com/acme-intruder/",
        ),
        (r"(a)\1", None),  # a back reference: no example is built, nothing is said
        (r"https://github\.com/a{99999999}.*", None),  # no example of that size is built
    ],
)
def test_github_patterns(pattern: str, stranger: str | None) -> None:
    found = stranger_subject(GITHUB, pattern)
    assert found == stranger
    if found is not None:  # the finding is a subject the pattern really matches
        assert re.fullmatch(pattern, found)


def test_other_forges_and_issuers() -> None:
    assert stranger_subject(GITLAB, r"https://gitlab\.com/acme.*") == (
        "https://gitlab.com/acme-intruder/app//.gitlab-ci.yml@refs/heads/main"
    )
    assert stranger_subject(GITLAB + "/", r"https://gitlab\.com/acme/.*") is None
    # an issuer whose owners are not anyone's to create (a company's own GitLab, Google
    # accounts, a cluster's service accounts) is not judged
    assert stranger_subject("https://gitlab.acme.example", r".*") is None
    assert stranger_subject("https://accounts.google.com", r".*@acme\.example") is None


def test_the_finding_names_the_signer_its_pattern_and_the_fix() -> None:
    signers = Signers.model_validate(
        {
            "keyless": [
                {
                    "name": "pinned",
                    "issuer": GITHUB,
                    "subjectRegExp": r"https://github\.com/acme/.+",
                },
                {"name": "open", "issuer": GITHUB, "subjectRegExp": r"https://github\.com/acme.*"},
                {"name": "exact", "issuer": GITHUB, "subject": "https://github.com/acme/x"},
            ]
        }
    )
    assert open_signers(signers) == (
        r"keyless signer open's subjectRegExp https://github\.com/acme.* (issuer "
        f"{GITHUB}) also matches https://github.com/acme-intruder{TAIL}, a workflow of an owner "
        r"anyone can create on github.com: end the owner's name with a `/` in the pattern "
        r"(`https://github\.com/acme/…`)"
    )
    assert (
        open_signers(Signers.model_validate({"keyless": signers.model_dump()["keyless"][:1]}))
        is None
    )


def test_explain_warns_where_there_is_no_operator_to_say_it() -> None:
    """A pipeline or a webhook run with policy files (``--policy``) has no status to read."""

    def explained(pattern: str) -> str:
        keyless = [{"name": "acme", "issuer": GITHUB, "subjectRegExp": pattern}]
        ix = index([policy(signers={"keyless": keyless})])
        eff = ix.effective(
            cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
        )
        assert eff is not None
        return explain_policy(eff)

    assert (
        f"  warning: keyless signer acme's subjectRegExp https://github\\.com/acme.* (issuer "
        f"{GITHUB}) also matches https://github.com/acme-intruder{TAIL}, "
    ) in explained(r"https://github\.com/acme.*")
    assert "warning" not in explained(r"https://github\.com/acme/.+")


def test_explain_names_the_runs_a_signer_is_trusted_for() -> None:
    subject = "https://github.com/acme/release/.github/workflows/attest.yml@refs/heads/main"
    keyless = [
        {
            "name": "release",
            "issuer": GITHUB,
            "subject": subject,
            "sourceRepositoryRefs": ["refs/heads/main", "refs/heads/release"],
            "buildTriggers": ["push"],
        }
    ]
    ix = index([policy(signers={"keyless": keyless})])
    eff = ix.effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert eff is not None
    (signer,) = eff.signers
    assert (signer.refs, signer.triggers) == (("refs/heads/main", "refs/heads/release"), ("push",))  # type: ignore[union-attr]
    assert (
        f"release (keyless {subject} on refs/heads/main or refs/heads/release, started by push)"
    ) in explain_policy(eff)


def test_two_policies_naming_one_signer_trust_the_runs_both_name() -> None:
    """Signers are intersected across policies; a signer one policy names with refs and another
    without (an operator adding refs one policy at a time) was dropped as two signers, leaving
    none, so every image was refused. Now it is the same signer, trusted for the runs both
    name; refs written in another order are the same refs."""
    subject = "https://github.com/acme/release/.github/workflows/attest.yml@refs/heads/main"

    def signer(**runs: list[str]) -> dict[str, object]:
        return {"name": "release", "issuer": GITHUB, "subject": subject, **runs}

    def signers_of(*specs: dict[str, object]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        ix = index([policy(f"p{i}", signers={"keyless": [s]}) for i, s in enumerate(specs)])
        eff = ix.effective(
            cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
        )
        assert eff is not None
        return [(s.refs, s.triggers) for s in eff.signers]  # type: ignore[union-attr]

    main, both = ["refs/heads/main"], ["refs/heads/release", "refs/heads/main"]
    assert signers_of(signer(sourceRepositoryRefs=main), signer()) == [(("refs/heads/main",), ())]
    assert signers_of(
        signer(sourceRepositoryRefs=both, buildTriggers=["push"]),
        signer(sourceRepositoryRefs=list(reversed(both))),
    ) == [(("refs/heads/main", "refs/heads/release"), ("push",))]
    assert signers_of(signer(sourceRepositoryRefs=both), signer(sourceRepositoryRefs=main)) == [
        (("refs/heads/main",), ())
    ]
    # refs that share nothing trust no run: no such signer
    assert (
        signers_of(
            signer(sourceRepositoryRefs=main), signer(sourceRepositoryRefs=["refs/heads/release"])
        )
        == []
    )
